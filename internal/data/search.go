package data

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/vectors"
)

// FaceEmbedder turns a photo into the embedding of one face in it: the
// largest one the face detector finds, or the one box ([x, y, w, h] in
// the photo's pixels) names, cropped and given to the embedding algorithm
// algorithmID (which the caller must see). It answers the embedding and
// the box used, or API errors naming field (the request's photo field),
// Box or AlgorithmId (no face in the photo: InvalidParameterValue on
// field). The platform wires it
// (internal/app) since the data center does not call algorithms itself.
type FaceEmbedder interface {
	EmbedFace(ctx context.Context, c *api.Caller, algorithmID, field string, image []byte, box []int) ([]float32, []int, error)
}

// maxSearchPhotoBytes is the largest picture upload SearchFaces embeds
// (UploadId): what Image's 4 MiB of base64 holds.
const maxSearchPhotoBytes = 3 << 20

// UseFaceEmbedder lets SearchFaces take a photo (Image); call it before
// serving.
func (s *Service) UseFaceEmbedder(e FaceEmbedder) { s.embedder = e }

// SearchFacesRequest is the request of SearchFaces: the face to look for
// is an existing record's (RecordId), a descriptor (Embedding), or a
// photo's (Image, or a picture upload's UploadId, with the embedding
// AlgorithmId, and optionally a Box).
type SearchFacesRequest struct {
	ProjectId string `json:"ProjectId" validate:"max=64"`
	// Image is a photo (JPEG or PNG, base64): its largest face, or the
	// one Box names, is embedded by AlgorithmId and searched for.
	Image string `json:"Image" validate:"max=4194304"`
	// UploadId is a completed picture upload of the project (tus,
	// CreateUploadToken), searched as Image is: for photos too large to
	// send inline, or already uploaded. It is read only to embed its face.
	UploadId    string `json:"UploadId" validate:"max=64"`
	AlgorithmId string `json:"AlgorithmId" validate:"max=64"`
	Box         []int  `json:"Box" validate:"max=4"`
	// RecordId searches with that record's stored embedding.
	RecordId string `json:"RecordId" validate:"max=64"`
	// Embedding searches with a descriptor of the partition's model and
	// dimension (as the face-attributes package's attributes.embedding).
	Embedding []float64 `json:"Embedding" validate:"max=2048"`
	// Type is the record type searched (default face).
	Type      string   `json:"Type" validate:"max=64"`
	DeviceIds []string `json:"DeviceIds" validate:"max=100"`
	TaskIds   []string `json:"TaskIds" validate:"max=100"`
	StartTime string   `json:"StartTime" validate:"max=64"`
	EndTime   string   `json:"EndTime" validate:"max=64"`
	// Threshold drops hits below this cosine similarity (0..1; 0 keeps
	// every hit that is not dissimilar). docs/search.md gives values per
	// model.
	Threshold float64 `json:"Threshold"`
	api.Paging
}

// FaceHit is one SearchFaces result: the record, how similar its face is,
// and a signed URL of its crop.
type FaceHit struct {
	RecordId   string     `json:"RecordId"`
	Similarity float64    `json:"Similarity"`
	DeviceId   string     `json:"DeviceId"`
	TaskId     string     `json:"TaskId"`
	Time       string     `json:"Time"`
	CropUrl    string     `json:"CropUrl"`
	Record     RecordInfo `json:"Record"`
}

// SearchFacesResponse is the response of SearchFaces. A similarity search
// has no total: HasMore says whether a next page (Offset+Limit) has hits.
type SearchFacesResponse struct {
	FaceSet []FaceHit `json:"FaceSet"`
	HasMore bool      `json:"HasMore"`
	// QueryBox is the face of Image that was searched for, [x, y, w, h].
	QueryBox []int `json:"QueryBox,omitempty"`
}

func registerSearch(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "SearchFaces", Summary: "Find the records whose face is most similar to a given one: an existing record's (RecordId), a descriptor (Embedding), or a photo's (Image, base64, or UploadId, a completed picture upload of the project: its largest face, or the one Box names, embedded by AlgorithmId; no face is InvalidParameterValue on Image or UploadId), in one project and record type (default face), filtered by devices, tasks and time range (StartTime inclusive, EndTime exclusive, RFC 3339) and a similarity Threshold, most similar first with signed crop URLs; Offset and Limit page (at most 1000 hits deep). A role narrowed to devices or tasks finds their records only. Answers ResourceUnavailable while the vector index is rebuilt from the store.", Permission: recordRead, Audit: true},
		func(ctx context.Context, c *api.Caller, r *SearchFacesRequest) (*SearchFacesResponse, error) {
			return s.searchFaces(ctx, c, r)
		})
}

func (s *Service) searchFaces(ctx context.Context, c *api.Caller, r *SearchFacesRequest) (*SearchFacesResponse, error) {
	project := r.ProjectId
	if project == "" {
		project = "default"
	}
	typ := r.Type
	if typ == "" {
		typ = "face"
	}
	start, err := parseTime("StartTime", r.StartTime)
	if err != nil {
		return nil, err
	}
	end, err := parseTime("EndTime", r.EndTime)
	if err != nil {
		return nil, err
	}
	if r.Threshold < 0 || r.Threshold > 1 || math.IsNaN(r.Threshold) {
		return nil, api.InvalidValue("Threshold", "%v: a cosine similarity from 0 to 1", r.Threshold)
	}
	off, lim := r.Page()
	if off+lim > vectors.MaxK {
		return nil, api.InvalidValue("Offset", "Offset+Limit is %d; a search pages through the first %d hits", off+lim, vectors.MaxK)
	}
	in := c.ListIn(project, recordReach)
	var q []float32
	var queryBox []int
	given := 0
	for _, set := range []bool{r.RecordId != "", len(r.Embedding) > 0, r.Image != "", r.UploadId != ""} {
		if set {
			given++
		}
	}
	photo := "Image"
	if r.UploadId != "" {
		photo = "UploadId"
	}
	switch {
	case given > 1:
		return nil, api.InvalidValue(photo, "give one of RecordId, Embedding, Image and UploadId")
	case r.Image != "" || r.UploadId != "":
		if r.AlgorithmId == "" {
			return nil, api.Missing("AlgorithmId")
		}
		if len(r.Box) != 0 && (len(r.Box) != 4 || r.Box[0] < 0 || r.Box[1] < 0 || r.Box[2] <= 0 || r.Box[3] <= 0) {
			return nil, api.InvalidValue("Box", "%v: [x, y, w, h] with w and h above 0", r.Box)
		}
		var img []byte
		if r.UploadId != "" {
			if !c.Sees(project) {
				return nil, api.NotFound("UploadId", r.UploadId)
			}
			up, err := s.UploadImage(ctx, project, r.UploadId, "UploadId", maxSearchPhotoBytes)
			if err != nil {
				return nil, err
			}
			img = up.Bytes
			c.SetResource(r.UploadId)
		} else {
			if img, err = base64.StdEncoding.DecodeString(r.Image); err != nil {
				return nil, api.InvalidValue("Image", "not base64: %v", err)
			}
			c.SetResource("image")
		}
		if s.embedder == nil {
			return nil, api.Errorf(api.ResourceUnavailable, "%s: searching by photo needs the algorithms module in this process", photo)
		}
		if q, queryBox, err = s.embedder.EmbedFace(ctx, c, r.AlgorithmId, photo, img, r.Box); err != nil {
			return nil, err
		}
		if err := vectors.CheckVector(q, "embedding"); err != nil {
			return nil, api.InvalidValue("AlgorithmId", "algorithm %s answered an unusable embedding: %s", r.AlgorithmId, trimPrefix(err))
		}
	case r.RecordId != "":
		c.SetResource(r.RecordId)
		if ok, err := s.reaches(ctx, in, r.RecordId); err != nil || !ok {
			if err == nil {
				err = api.NotFound("RecordId", r.RecordId)
			}
			return nil, err
		}
		if q, err = s.Embedding(ctx, r.RecordId); err != nil {
			return nil, err
		}
		if q == nil {
			return nil, api.InvalidValue("RecordId", "record %s has no embedding (its flow stored none: see docs/search.md)", r.RecordId)
		}
	case len(r.Embedding) > 0:
		c.SetResource("embedding")
		q = make([]float32, len(r.Embedding))
		for i, x := range r.Embedding {
			q[i] = float32(x)
		}
		if err := vectors.CheckVector(q, "Embedding"); err != nil {
			return nil, api.InvalidValue("Embedding", "%s", trimPrefix(err))
		}
	default:
		return nil, api.Missing("RecordId, Embedding or Image")
	}
	if s.vectors == nil {
		return nil, api.Errorf(api.ResourceUnavailable, "vector index: none is configured on this platform")
	}
	f := vectors.Filter{ProjectID: project, Type: typ, DeviceIDs: r.DeviceIds, TaskIDs: r.TaskIds, Start: start, End: end,
		MinSimilarity: float32(r.Threshold)}
	// One more than the page says whether there is a next one; the record
	// searched with finds itself, and is not an answer.
	k := min(off+lim+2, vectors.MaxK)
	hits, err := s.vectors.Search(ctx, q, k, f)
	switch {
	case errors.Is(err, vectors.ErrUnavailable):
		return nil, api.Errorf(api.ResourceUnavailable, "vector index: %s", trimPrefix(err))
	case errors.Is(err, vectors.ErrDimension):
		field := "Embedding"
		switch {
		case r.RecordId != "":
			field = "RecordId"
		case r.Image != "" || r.UploadId != "":
			field = "AlgorithmId"
		}
		return nil, api.InvalidValue(field, "%s", trimPrefix(err))
	case err != nil:
		return nil, err
	}
	ids := make([]string, 0, len(hits))
	for _, h := range hits {
		if h.ID != r.RecordId {
			ids = append(ids, h.ID)
		}
	}
	// The records, through the caller's reach: hits of devices or tasks a
	// narrowed role does not see, and index entries whose records are gone,
	// drop out here.
	recs, err := s.recordsByID(ctx, in, ids)
	if err != nil {
		return nil, err
	}
	out := &SearchFacesResponse{FaceSet: []FaceHit{}, QueryBox: queryBox}
	n := 0
	for _, h := range hits {
		rec, ok := recs[h.ID]
		if !ok || h.ID == r.RecordId {
			continue
		}
		n++
		if n <= off {
			continue
		}
		if len(out.FaceSet) == lim {
			out.HasMore = true
			break
		}
		info, err := s.recordInfo(ctx, rec)
		if err != nil {
			return nil, err
		}
		out.FaceSet = append(out.FaceSet, FaceHit{RecordId: rec.ID, Similarity: math.Round(float64(h.Similarity)*1e4) / 1e4,
			DeviceId: rec.DeviceID, TaskId: rec.TaskID, Time: info.Time, CropUrl: cropURL(info), Record: info})
	}
	return out, nil
}

// recordsByID loads the records of ids that in reaches.
func (s *Service) recordsByID(ctx context.Context, in store.Projects, ids []string) (map[string]Record, error) {
	out := make(map[string]Record, len(ids))
	for lo := 0; lo < len(ids); lo += deleteBatchSize {
		chunk := ids[lo:min(lo+deleteBatchSize, len(ids))]
		recs, _, err := s.Records(ctx, Query{Projects: &in, IDs: chunk, Limit: len(chunk)})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			out[r.ID] = r
		}
	}
	return out, nil
}

// cropURL is the signed URL of a record's crop: the object its data's
// Crop field refers to (the face-structuring template's), else its first
// object.
func cropURL(info RecordInfo) string {
	var d struct {
		Crop struct{ ObjectKey string }
	}
	if err := json.Unmarshal(info.Data, &d); err == nil && d.Crop.ObjectKey != "" {
		for i, k := range info.ObjectKeys {
			if k == d.Crop.ObjectKey && i < len(info.ObjectUrls) {
				return info.ObjectUrls[i]
			}
		}
	}
	if len(info.ObjectUrls) > 0 {
		return info.ObjectUrls[0]
	}
	return ""
}

// trimPrefix drops the "vectors: …: " sentinel text from an index error,
// keeping what names the problem.
func trimPrefix(err error) string {
	msg := err.Error()
	for _, sentinel := range []error{vectors.ErrDimension, vectors.ErrInvalid, vectors.ErrUnavailable} {
		if p := sentinel.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
			return msg[len(p):]
		}
	}
	return msg
}
