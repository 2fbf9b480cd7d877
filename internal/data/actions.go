package data

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
)

var (
	recordRead  = api.Permission{Resource: "record", Access: api.Read}
	recordWrite = api.Permission{Resource: "record", Access: api.Write}
	uploadRead  = api.Permission{Resource: "upload", Access: api.Read}
	uploadWrite = api.Permission{Resource: "upload", Access: api.Write}
)

// timeLayout is how records' times are answered: RFC 3339 with
// milliseconds, the precision they are stored with.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// AttributeFilter is a filter on a top-level field of a record's document
// (see Attribute): equality of its text by default, or a comparison.
type AttributeFilter struct {
	Name  string `json:"Name" validate:"required,max=64"`
	Op    string `json:"Op" validate:"max=2,oneof== != < <= > >="`
	Value string `json:"Value" validate:"max=1024"`
}

// DescribeRecordsRequest is the request of DescribeRecords.
type DescribeRecordsRequest struct {
	ProjectId  string            `json:"ProjectId" validate:"max=64"`
	TaskIds    []string          `json:"TaskIds" validate:"max=100"`
	DeviceIds  []string          `json:"DeviceIds" validate:"max=100"`
	Types      []string          `json:"Types" validate:"max=100"`
	StartTime  string            `json:"StartTime" validate:"max=64"`
	EndTime    string            `json:"EndTime" validate:"max=64"`
	Attributes []AttributeFilter `json:"Attributes" validate:"max=10"`
	// EdgeNodeIds keeps the records of those sites: of devices placed on
	// the edge nodes, or of tasks placed on them.
	EdgeNodeIds []string `json:"EdgeNodeIds" validate:"max=100"`
	// WithEmbedding adds each record's stored embedding (SearchFaces'
	// descriptor), which responses leave out otherwise.
	WithEmbedding bool `json:"WithEmbedding"`
	api.Paging
}

// RecordInfo is a record as Describe actions return it; ObjectUrls are
// signed GET URLs of ObjectKeys, in the same order.
type RecordInfo struct {
	RecordId    string          `json:"RecordId"`
	ProjectId   string          `json:"ProjectId"`
	TaskId      string          `json:"TaskId"`
	DeviceId    string          `json:"DeviceId"`
	Type        string          `json:"Type"`
	Time        string          `json:"Time"`
	Data        json.RawMessage `json:"Data"`
	ObjectKeys  []string        `json:"ObjectKeys"`
	ObjectUrls  []string        `json:"ObjectUrls"`
	CreatedTime string          `json:"CreatedTime"`
	// Embedding is the record's stored embedding, only when asked
	// (WithEmbedding) and the record has one.
	Embedding []float32 `json:"Embedding,omitempty"`
}

// DescribeRecordsResponse is the response of DescribeRecords.
type DescribeRecordsResponse struct {
	TotalCount int          `json:"TotalCount"`
	RecordSet  []RecordInfo `json:"RecordSet"`
}

// DescribeRecordRequest is the request of DescribeRecord.
type DescribeRecordRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	RecordId  string `json:"RecordId" validate:"required,max=64"`
	// WithEmbedding adds the record's stored embedding.
	WithEmbedding bool `json:"WithEmbedding"`
}

// DescribeRecordResponse is the response of DescribeRecord.
type DescribeRecordResponse struct {
	Record RecordInfo `json:"Record"`
}

// DeleteRecordsRequest is the request of DeleteRecords: either RecordIds,
// or a TaskId with an optional time range.
type DeleteRecordsRequest struct {
	ProjectId string   `json:"ProjectId" validate:"max=64"`
	RecordIds []string `json:"RecordIds" validate:"max=100"`
	TaskId    string   `json:"TaskId" validate:"max=64"`
	StartTime string   `json:"StartTime" validate:"max=64"`
	EndTime   string   `json:"EndTime" validate:"max=64"`
}

// DeleteRecordsResponse is the response of DeleteRecords.
type DeleteRecordsResponse struct {
	DeletedCount int `json:"DeletedCount"`
}

// CreateUploadTokenRequest is the request of CreateUploadToken.
type CreateUploadTokenRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// MaxSize bounds each upload made with the token, in bytes; 0 takes
	// the platform's limit.
	MaxSize int64 `json:"MaxSize" validate:"min=0"`
}

// CreateUploadTokenResponse is the response of CreateUploadToken: send
// Token as the Upload-Token header (or Authorization: Bearer) of every tus
// request to Endpoint.
type CreateUploadTokenResponse struct {
	Token       string `json:"Token"`
	Endpoint    string `json:"Endpoint"`
	ProjectId   string `json:"ProjectId"`
	MaxSize     int64  `json:"MaxSize"`
	ExpiredTime string `json:"ExpiredTime"`
}

// DescribeUploadsRequest is the request of DescribeUploads.
type DescribeUploadsRequest struct {
	ProjectId string   `json:"ProjectId" validate:"max=64"`
	UploadIds []string `json:"UploadIds" validate:"max=100"`
	api.Paging
}

// UploadInfo is an upload as DescribeUploads returns it.
type UploadInfo struct {
	UploadId    string `json:"UploadId"`
	ProjectId   string `json:"ProjectId"`
	Name        string `json:"Name"`
	Size        int64  `json:"Size"`
	ContentType string `json:"ContentType"`
	State       string `json:"State"`
	ObjectKey   string `json:"ObjectKey"`
	Sha256      string `json:"Sha256"`
	CreatedTime string `json:"CreatedTime"`
	ExpiredTime string `json:"ExpiredTime"`
}

// DescribeUploadsResponse is the response of DescribeUploads.
type DescribeUploadsResponse struct {
	TotalCount int          `json:"TotalCount"`
	UploadSet  []UploadInfo `json:"UploadSet"`
}

// RegisterActions adds the data center's actions to reg. s may be nil when
// the registry only feeds docs or the CLI.
func RegisterActions(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "DescribeRecords", Summary: "List records, newest first, filtered by task, device, type, site (EdgeNodeIds: records of the edge nodes' devices or tasks), time range (StartTime inclusive, EndTime exclusive, RFC 3339) and top-level Data fields (Attributes: Op = or != compares the field's text, < <= > >= its number; a record without the field matches none); objects come with signed URLs. Without ProjectId: every project where the caller's roles grant it; a role narrowed to devices or tasks lists their records.", Permission: recordRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeRecordsRequest) (*DescribeRecordsResponse, error) {
			start, err := parseTime("StartTime", r.StartTime)
			if err != nil {
				return nil, err
			}
			end, err := parseTime("EndTime", r.EndTime)
			if err != nil {
				return nil, err
			}
			in := c.ListIn(r.ProjectId, recordReach)
			q := Query{Projects: &in, TaskIDs: r.TaskIds, DeviceIDs: r.DeviceIds, Types: r.Types, EdgeNodes: r.EdgeNodeIds, Start: start, End: end}
			for _, a := range r.Attributes {
				q.Attributes = append(q.Attributes, Attribute(a))
			}
			q.Offset, q.Limit = r.Page()
			recs, total, err := s.Records(ctx, q)
			if err != nil {
				return nil, err
			}
			out := &DescribeRecordsResponse{TotalCount: total, RecordSet: make([]RecordInfo, 0, len(recs))}
			for _, rec := range recs {
				info, err := s.recordInfo(ctx, rec)
				if err != nil {
					return nil, err
				}
				if r.WithEmbedding {
					if info.Embedding, err = s.Embedding(ctx, rec.ID); err != nil {
						return nil, err
					}
				}
				out.RecordSet = append(out.RecordSet, info)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeRecord", Summary: "Return one record with signed URLs of its objects (a role narrowed to devices or tasks reaches their records only).", Permission: recordRead},
		func(ctx context.Context, c *api.Caller, r *DescribeRecordRequest) (*DescribeRecordResponse, error) {
			rec, err := s.Record(ctx, r.RecordId)
			if err != nil {
				return nil, err
			}
			if r.ProjectId != "" && rec.ProjectID != r.ProjectId {
				return nil, api.NotFound("RecordId", r.RecordId)
			}
			// A role narrowed to devices or tasks reaches the records
			// DescribeRecords lists to it, and no other.
			if ok, err := s.reaches(ctx, c.ListIn(rec.ProjectID, recordReach), rec.ID); err != nil || !ok {
				if err == nil {
					err = api.NotFound("RecordId", r.RecordId)
				}
				return nil, err
			}
			info, err := s.recordInfo(ctx, rec)
			if err != nil {
				return nil, err
			}
			if r.WithEmbedding {
				if info.Embedding, err = s.Embedding(ctx, rec.ID); err != nil {
					return nil, err
				}
			}
			return &DescribeRecordResponse{Record: info}, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteRecords", Summary: "Delete records and the objects their task stored: by RecordIds, or all of a TaskId's records in an optional time range.", Permission: recordWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeleteRecordsRequest) (*DeleteRecordsResponse, error) {
			switch {
			case len(r.RecordIds) > 0 && r.TaskId != "":
				return nil, api.InvalidValue("TaskId", "give either RecordIds or TaskId, not both")
			case len(r.RecordIds) > 0:
				if r.StartTime != "" || r.EndTime != "" {
					return nil, api.InvalidValue("StartTime", "a time range applies to TaskId, not to RecordIds")
				}
				res := r.RecordIds[0]
				if len(r.RecordIds) > 1 {
					res += fmt.Sprintf(" (+%d more)", len(r.RecordIds)-1)
				}
				c.SetResource(res)
				n, err := s.DeleteRecords(ctx, c.ListIn(r.ProjectId, recordReach), r.RecordIds)
				return &DeleteRecordsResponse{DeletedCount: n}, err
			case r.TaskId != "":
				start, err := parseTime("StartTime", r.StartTime)
				if err != nil {
					return nil, err
				}
				end, err := parseTime("EndTime", r.EndTime)
				if err != nil {
					return nil, err
				}
				c.SetResource(r.TaskId)
				n, err := s.DeleteTaskRecords(ctx, c.ListIn(r.ProjectId, recordReach), r.TaskId, start, end)
				return &DeleteRecordsResponse{DeletedCount: n}, err
			}
			return nil, api.Missing("RecordIds or TaskId")
		})
	api.Register(reg, api.Spec{Name: "CreateUploadToken", Summary: "Create a short-lived token for resumable tus 1.0 uploads into a project at the returned Endpoint (send it as the Upload-Token header).", Permission: uploadWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateUploadTokenRequest) (*CreateUploadTokenResponse, error) {
			project := r.ProjectId
			if project == "" {
				project = c.ProjectID
			}
			if err := s.projectExists(ctx, project); err != nil {
				return nil, err
			}
			if s.up == nil {
				return nil, api.Errorf(api.ResourceUnavailable, "uploads are not configured on this platform")
			}
			tok, g, err := s.NewUploadToken(project, r.MaxSize)
			if err != nil {
				return nil, err
			}
			c.SetResource(project)
			return &CreateUploadTokenResponse{Token: tok, Endpoint: s.o.PublicURL + UploadPath, ProjectId: g.ProjectID, MaxSize: g.MaxSize,
				ExpiredTime: g.Expires.UTC().Format(time.RFC3339)}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeUploads", Summary: "List tus uploads, newest first: state (uploading, completed, expired), size, and for completed ones the object key and SHA-256 (computed as the PATCH bodies are written and stored with the completion; for an upload resumed in another process, computed after the last PATCH is answered: empty for about a second per GB). Without ProjectId: every project where the caller's roles grant it.", Permission: uploadRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeUploadsRequest) (*DescribeUploadsResponse, error) {
			off, lim := r.Page()
			ups, total, err := s.Uploads(ctx, c.ListIn(r.ProjectId, nil), r.UploadIds, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeUploadsResponse{TotalCount: total, UploadSet: make([]UploadInfo, 0, len(ups))}
			for _, u := range ups {
				out.UploadSet = append(out.UploadSet, UploadInfo{UploadId: u.ID, ProjectId: u.ProjectID, Name: u.Name, Size: u.Size,
					ContentType: u.ContentType, State: u.State, ObjectKey: u.BlobKey, Sha256: u.SHA256,
					CreatedTime: u.CreatedAt.Format(time.RFC3339), ExpiredTime: u.ExpiresAt.Format(time.RFC3339)})
			}
			return out, nil
		})
	registerSearch(reg, s)
	registerSearchRecords(reg, s)
	registerWatchlists(reg, s)
}

func (s *Service) recordInfo(ctx context.Context, r Record) (RecordInfo, error) {
	urls, err := s.ObjectURLs(ctx, r.Objects)
	if err != nil {
		return RecordInfo{}, err
	}
	keys := r.Objects
	if keys == nil {
		keys = []string{}
	}
	return RecordInfo{RecordId: r.ID, ProjectId: r.ProjectID, TaskId: r.TaskID, DeviceId: r.DeviceID, Type: r.Type,
		Time: r.Time.Format(timeLayout), Data: r.Data, ObjectKeys: keys, ObjectUrls: urls, CreatedTime: r.CreatedAt.Format(time.RFC3339)}, nil
}

// parseTime parses an optional RFC 3339 time field.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, api.InvalidValue(field, "%q is not an RFC 3339 time such as 2026-11-28T08:00:00Z", v)
	}
	return t, nil
}

func (s *Service) projectExists(ctx context.Context, id string) error {
	var one int
	err := s.db.QueryRow(ctx, "SELECT 1 FROM projects WHERE id = ?", id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return api.NotFound("ProjectId", id)
	}
	return err
}
