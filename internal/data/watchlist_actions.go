package data

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// CreateWatchlistRequest is the request of CreateWatchlist.
type CreateWatchlistRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=128"`
	Description string `json:"Description" validate:"max=1024"`
	// Threshold is the cosine similarity a face needs to hit a person of
	// the list (above 0, at most 1; docs/search.md gives values per model).
	Threshold float64 `json:"Threshold"`
	// Enabled: match nodes compare faces with enabled lists only (default
	// true).
	Enabled *bool `json:"Enabled"`
}

// CreateWatchlistResponse is the response of CreateWatchlist.
type CreateWatchlistResponse struct {
	WatchlistId string `json:"WatchlistId"`
}

// ModifyWatchlistRequest is the request of ModifyWatchlist: fields left
// out stay as they are.
type ModifyWatchlistRequest struct {
	ProjectId   string   `json:"ProjectId" validate:"max=64"`
	WatchlistId string   `json:"WatchlistId" validate:"required,max=64"`
	Name        *string  `json:"Name" validate:"omitempty,max=128"`
	Description *string  `json:"Description" validate:"omitempty,max=1024"`
	Threshold   *float64 `json:"Threshold"`
	Enabled     *bool    `json:"Enabled"`
}

// WatchlistIdRequest names one watchlist (DeleteWatchlist).
type WatchlistIdRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	WatchlistId string `json:"WatchlistId" validate:"required,max=64"`
}

// DescribeWatchlistsRequest is the request of DescribeWatchlists.
type DescribeWatchlistsRequest struct {
	ProjectId    string   `json:"ProjectId" validate:"max=64"`
	WatchlistIds []string `json:"WatchlistIds" validate:"max=100"`
	api.Paging
}

// WatchlistInfo is a watchlist as DescribeWatchlists returns it.
type WatchlistInfo struct {
	WatchlistId string  `json:"WatchlistId"`
	ProjectId   string  `json:"ProjectId"`
	Name        string  `json:"Name"`
	Description string  `json:"Description"`
	Threshold   float64 `json:"Threshold"`
	Enabled     bool    `json:"Enabled"`
	PersonCount int     `json:"PersonCount"`
	CreatedTime string  `json:"CreatedTime"`
	UpdatedTime string  `json:"UpdatedTime"`
}

// DescribeWatchlistsResponse is the response of DescribeWatchlists.
type DescribeWatchlistsResponse struct {
	TotalCount   int             `json:"TotalCount"`
	WatchlistSet []WatchlistInfo `json:"WatchlistSet"`
}

// FaceInput is a reference face: a photo (Image, base64 JPEG or PNG: its
// largest face, or the one Box names, described by AlgorithmId), or an
// embedding given as is (of the model the lists' faces are described
// with).
type FaceInput struct {
	Image       string    `json:"Image" validate:"max=4194304"`
	AlgorithmId string    `json:"AlgorithmId" validate:"max=64"`
	Box         []int     `json:"Box" validate:"max=4"`
	Embedding   []float64 `json:"Embedding" validate:"max=2048"`
}

// CreateWatchlistPersonRequest is the request of CreateWatchlistPerson.
type CreateWatchlistPersonRequest struct {
	ProjectId    string      `json:"ProjectId" validate:"max=64"`
	Name         string      `json:"Name" validate:"required,max=128"`
	ExternalId   string      `json:"ExternalId" validate:"max=128"`
	Notes        string      `json:"Notes" validate:"max=2048"`
	WatchlistIds []string    `json:"WatchlistIds" validate:"max=20"`
	Faces        []FaceInput `json:"Faces" validate:"max=10"`
}

// CreateWatchlistPersonResponse is the response of CreateWatchlistPerson.
type CreateWatchlistPersonResponse struct {
	PersonId string     `json:"PersonId"`
	FaceSet  []FaceInfo `json:"FaceSet"`
}

// FaceInfo is a stored reference face: its id, the box of the face in its
// photo ([] for a given embedding), the algorithm that described it and
// the embedding's dimension. The embedding itself is not returned.
type FaceInfo struct {
	FaceId      string `json:"FaceId"`
	Box         []int  `json:"Box"`
	AlgorithmId string `json:"AlgorithmId"`
	Dim         int    `json:"Dim"`
}

// ModifyWatchlistPersonRequest is the request of ModifyWatchlistPerson:
// fields left out stay; WatchlistIds, when given, replaces the person's
// lists; AddFaces and RemoveFaceIds change the reference faces.
type ModifyWatchlistPersonRequest struct {
	ProjectId     string      `json:"ProjectId" validate:"max=64"`
	PersonId      string      `json:"PersonId" validate:"required,max=64"`
	Name          *string     `json:"Name" validate:"omitempty,max=128"`
	ExternalId    *string     `json:"ExternalId" validate:"omitempty,max=128"`
	Notes         *string     `json:"Notes" validate:"omitempty,max=2048"`
	WatchlistIds  *[]string   `json:"WatchlistIds" validate:"omitempty,max=20"`
	AddFaces      []FaceInput `json:"AddFaces" validate:"max=10"`
	RemoveFaceIds []string    `json:"RemoveFaceIds" validate:"max=10"`
}

// ModifyWatchlistPersonResponse is the response of ModifyWatchlistPerson:
// the faces added.
type ModifyWatchlistPersonResponse struct {
	FaceSet []FaceInfo `json:"FaceSet"`
}

// DeleteWatchlistPeopleRequest is the request of DeleteWatchlistPeople.
type DeleteWatchlistPeopleRequest struct {
	ProjectId string   `json:"ProjectId" validate:"max=64"`
	PersonIds []string `json:"PersonIds" validate:"required,max=100"`
}

// DeleteWatchlistPeopleResponse is the response of DeleteWatchlistPeople.
type DeleteWatchlistPeopleResponse struct {
	DeletedCount int `json:"DeletedCount"`
}

// DescribeWatchlistPeopleRequest is the request of DescribeWatchlistPeople.
type DescribeWatchlistPeopleRequest struct {
	ProjectId    string   `json:"ProjectId" validate:"max=64"`
	PersonIds    []string `json:"PersonIds" validate:"max=100"`
	WatchlistIds []string `json:"WatchlistIds" validate:"max=100"`
	api.Paging
}

// WatchPersonInfo is a person as DescribeWatchlistPeople returns it.
type WatchPersonInfo struct {
	PersonId     string     `json:"PersonId"`
	ProjectId    string     `json:"ProjectId"`
	Name         string     `json:"Name"`
	ExternalId   string     `json:"ExternalId"`
	Notes        string     `json:"Notes"`
	WatchlistIds []string   `json:"WatchlistIds"`
	FaceSet      []FaceInfo `json:"FaceSet"`
	CreatedTime  string     `json:"CreatedTime"`
	UpdatedTime  string     `json:"UpdatedTime"`
}

// DescribeWatchlistPeopleResponse is the response of
// DescribeWatchlistPeople.
type DescribeWatchlistPeopleResponse struct {
	TotalCount int               `json:"TotalCount"`
	PersonSet  []WatchPersonInfo `json:"PersonSet"`
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

func faceInfos(fs []ReferenceFace) []FaceInfo {
	out := make([]FaceInfo, len(fs))
	for i, f := range fs {
		box := f.Box
		if box == nil {
			box = []int{}
		}
		out[i] = FaceInfo{FaceId: f.ID, Box: box, AlgorithmId: f.AlgorithmID, Dim: f.Dim}
	}
	return out
}

func newFaceInfos(fs []newFace) []FaceInfo {
	refs := make([]ReferenceFace, len(fs))
	for i, f := range fs {
		refs[i] = f.ReferenceFace
	}
	return faceInfos(refs)
}

func registerWatchlists(reg *api.Registry, s *Service) {
	api.Register(reg, api.Spec{Name: "CreateWatchlist", Summary: "Create a watchlist: a named list of people with the cosine similarity (Threshold, above 0 and at most 1) a face needs to hit one of them; match flow nodes compare every face with the project's enabled lists (Enabled, default true) and publish tianshu.watchlist.hit.", Permission: watchlistWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateWatchlistRequest) (*CreateWatchlistResponse, error) {
			if err := checkText("Name", r.Name, maxWatchNameLen, true); err != nil {
				return nil, err
			}
			if err := checkText("Description", r.Description, 1024, false); err != nil {
				return nil, err
			}
			if err := checkThreshold(r.Threshold); err != nil {
				return nil, err
			}
			project := r.ProjectId
			if project == "" {
				project = c.ProjectID
			}
			w := &Watchlist{ProjectID: project, Name: r.Name, Description: r.Description, Threshold: r.Threshold, Enabled: r.Enabled == nil || *r.Enabled}
			if err := s.createWatchlist(ctx, w); err != nil {
				return nil, err
			}
			c.SetResource(w.ID)
			return &CreateWatchlistResponse{WatchlistId: w.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyWatchlist", Summary: "Change a watchlist's name, description, threshold or whether it is enabled; match nodes in every process see the change within a second.", Permission: watchlistWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyWatchlistRequest) (*struct{}, error) {
			c.SetResource(r.WatchlistId)
			w, err := s.watchlist(ctx, c.ListIn(r.ProjectId, nil), r.WatchlistId)
			if err != nil {
				return nil, err
			}
			if r.Name != nil {
				if err := checkText("Name", *r.Name, maxWatchNameLen, true); err != nil {
					return nil, err
				}
				w.Name = *r.Name
			}
			if r.Description != nil {
				if err := checkText("Description", *r.Description, 1024, false); err != nil {
					return nil, err
				}
				w.Description = *r.Description
			}
			if r.Threshold != nil {
				if err := checkThreshold(*r.Threshold); err != nil {
					return nil, err
				}
				w.Threshold = *r.Threshold
			}
			if r.Enabled != nil {
				w.Enabled = *r.Enabled
			}
			return &struct{}{}, s.db.InTx(ctx, func(tx *store.Tx) error {
				n, err := s.count(ctx, tx, "SELECT COUNT(*) FROM watchlists WHERE project_id = ? AND name = ? AND id <> ?", w.ProjectID, w.Name, w.ID)
				if err != nil {
					return err
				}
				if n > 0 {
					return listNameInUse(&w)
				}
				if _, err := tx.Exec(ctx, "UPDATE watchlists SET name = ?, description = ?, threshold = ?, enabled = ?, updated_at = ? WHERE id = ?",
					w.Name, w.Description, w.Threshold, boolInt(w.Enabled), s.o.Now().UnixMilli(), w.ID); err != nil {
					if s.db.IsUniqueViolation(err) {
						return listNameInUse(&w)
					}
					return fmt.Errorf("data: update watchlist: %w", err)
				}
				return s.bumpWatchVersion(ctx, tx, w.ProjectID, listChange(w.ID))
			})
		})
	api.Register(reg, api.Spec{Name: "DeleteWatchlist", Summary: "Delete a watchlist; its people stay (on their other lists, or on none).", Permission: watchlistWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *WatchlistIdRequest) (*struct{}, error) {
			c.SetResource(r.WatchlistId)
			w, err := s.watchlist(ctx, c.ListIn(r.ProjectId, nil), r.WatchlistId)
			if err != nil {
				return nil, err
			}
			return &struct{}{}, s.db.InTx(ctx, func(tx *store.Tx) error {
				if _, err := tx.Exec(ctx, "DELETE FROM watchlist_members WHERE list_id = ?", w.ID); err != nil {
					return fmt.Errorf("data: delete watchlist: %w", err)
				}
				if _, err := tx.Exec(ctx, "DELETE FROM watchlists WHERE id = ?", w.ID); err != nil {
					return fmt.Errorf("data: delete watchlist: %w", err)
				}
				return s.bumpWatchVersion(ctx, tx, w.ProjectID, listChange(w.ID))
			})
		})
	api.Register(reg, api.Spec{Name: "DescribeWatchlists", Summary: "List watchlists by project and name, with how many people each holds. Without ProjectId: every project where the caller's roles grant it.", Permission: watchlistRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeWatchlistsRequest) (*DescribeWatchlistsResponse, error) {
			off, lim := r.Page()
			ls, total, err := s.watchlists(ctx, c.ListIn(r.ProjectId, nil), r.WatchlistIds, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeWatchlistsResponse{TotalCount: total, WatchlistSet: make([]WatchlistInfo, 0, len(ls))}
			for _, w := range ls {
				out.WatchlistSet = append(out.WatchlistSet, WatchlistInfo{WatchlistId: w.ID, ProjectId: w.ProjectID, Name: w.Name, Description: w.Description,
					Threshold: w.Threshold, Enabled: w.Enabled, PersonCount: w.People, CreatedTime: msTime(w.CreatedAt), UpdatedTime: msTime(w.UpdatedAt)})
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "CreateWatchlistPerson", Summary: "Add a person to a project's watchlists (WatchlistIds) with up to 10 reference faces (Faces: a photo, Image base64 with the embedding AlgorithmId, whose largest face or the one Box names is described; or an Embedding given as is). A photo without a face is InvalidParameterValue naming Faces[i].Image.", Permission: watchlistWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateWatchlistPersonRequest) (*CreateWatchlistPersonResponse, error) {
			if err := checkPerson(r.Name, r.ExternalId, r.Notes); err != nil {
				return nil, err
			}
			if len(r.Faces) > MaxPersonFaces {
				return nil, api.InvalidValue("Faces", "%d faces; at most %d", len(r.Faces), MaxPersonFaces)
			}
			project := r.ProjectId
			if project == "" {
				project = c.ProjectID
			}
			if err := s.projectExists(ctx, project); err != nil {
				return nil, err
			}
			faces, err := s.faceInputs(ctx, c, "Faces", r.Faces)
			if err != nil {
				return nil, err
			}
			p := WatchPerson{ID: newPersonID(), ProjectID: project}
			now := s.o.Now().UnixMilli()
			err = s.db.InTx(ctx, func(tx *store.Tx) error {
				if err := s.checkLists(ctx, tx, project, "WatchlistIds", r.WatchlistIds); err != nil {
					return err
				}
				n, err := s.count(ctx, tx, "SELECT COUNT(*) FROM watchlist_people WHERE project_id = ?", project)
				if err != nil {
					return err
				}
				if n >= MaxWatchlistPeople {
					return api.Errorf(api.LimitExceeded, "project %s has %d people on watchlists; at most %d", project, n, MaxWatchlistPeople)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO watchlist_people (id, project_id, name, external_id, notes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
					p.ID, project, r.Name, r.ExternalId, r.Notes, now, now); err != nil {
					return fmt.Errorf("data: insert person: %w", err)
				}
				if err := s.setMembership(ctx, tx, project, p.ID, r.WatchlistIds); err != nil {
					return err
				}
				if err := s.insertFaces(ctx, tx, project, p.ID, faces); err != nil {
					return err
				}
				return s.bumpWatchVersion(ctx, tx, project, personChange(p.ID))
			})
			if err != nil {
				return nil, err
			}
			c.SetResource(p.ID)
			return &CreateWatchlistPersonResponse{PersonId: p.ID, FaceSet: newFaceInfos(faces)}, nil
		})
	api.Register(reg, api.Spec{Name: "ModifyWatchlistPerson", Summary: "Change a watchlist person: name, external id, notes, the lists it belongs to (WatchlistIds replaces them), reference faces to add (AddFaces, as CreateWatchlistPerson's Faces) or remove (RemoveFaceIds).", Permission: watchlistWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ModifyWatchlistPersonRequest) (*ModifyWatchlistPersonResponse, error) {
			c.SetResource(r.PersonId)
			p, err := s.person(ctx, c.ListIn(r.ProjectId, nil), r.PersonId)
			if err != nil {
				return nil, err
			}
			for _, f := range []struct {
				to *string
				v  *string
			}{{&p.Name, r.Name}, {&p.ExternalID, r.ExternalId}, {&p.Notes, r.Notes}} {
				if f.v != nil {
					*f.to = *f.v
				}
			}
			if err := checkPerson(p.Name, p.ExternalID, p.Notes); err != nil {
				return nil, err
			}
			have := map[string]bool{}
			for _, f := range p.Faces {
				have[f.ID] = true
			}
			for i, id := range r.RemoveFaceIds {
				if !have[id] {
					return nil, api.NotFound(fmt.Sprintf("RemoveFaceIds[%d]", i), id)
				}
			}
			faces, err := s.faceInputs(ctx, c, "AddFaces", r.AddFaces)
			if err != nil {
				return nil, err
			}
			err = s.db.InTx(ctx, func(tx *store.Tx) error {
				if r.WatchlistIds != nil {
					if err := s.checkLists(ctx, tx, p.ProjectID, "WatchlistIds", *r.WatchlistIds); err != nil {
						return err
					}
					if err := s.setMembership(ctx, tx, p.ProjectID, p.ID, *r.WatchlistIds); err != nil {
						return err
					}
				}
				for _, id := range r.RemoveFaceIds {
					if _, err := tx.Exec(ctx, "DELETE FROM watchlist_faces WHERE id = ? AND person_id = ?", id, p.ID); err != nil {
						return fmt.Errorf("data: delete reference face: %w", err)
					}
				}
				if err := s.insertFaces(ctx, tx, p.ProjectID, p.ID, faces); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, "UPDATE watchlist_people SET name = ?, external_id = ?, notes = ?, updated_at = ? WHERE id = ?",
					p.Name, p.ExternalID, p.Notes, s.o.Now().UnixMilli(), p.ID); err != nil {
					return fmt.Errorf("data: update person: %w", err)
				}
				return s.bumpWatchVersion(ctx, tx, p.ProjectID, personChange(p.ID))
			})
			if err != nil {
				return nil, err
			}
			return &ModifyWatchlistPersonResponse{FaceSet: newFaceInfos(faces)}, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteWatchlistPeople", Summary: "Delete watchlist people with their reference faces and memberships; the hits they caused stay as records.", Permission: watchlistWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *DeleteWatchlistPeopleRequest) (*DeleteWatchlistPeopleResponse, error) {
			if len(r.PersonIds) == 0 {
				return nil, api.Missing("PersonIds")
			}
			res := r.PersonIds[0]
			if len(r.PersonIds) > 1 {
				res += fmt.Sprintf(" (+%d more)", len(r.PersonIds)-1)
			}
			c.SetResource(res)
			ps, _, err := s.people(ctx, c.ListIn(r.ProjectId, nil), r.PersonIds, nil, 0, len(r.PersonIds))
			if err != nil || len(ps) == 0 {
				return &DeleteWatchlistPeopleResponse{}, err
			}
			err = s.db.InTx(ctx, func(tx *store.Tx) error {
				projects := map[string][]watchChange{}
				for _, p := range ps {
					for _, q := range []string{"DELETE FROM watchlist_faces WHERE person_id = ?", "DELETE FROM watchlist_members WHERE person_id = ?",
						"DELETE FROM watchlist_people WHERE id = ?"} {
						if _, err := tx.Exec(ctx, q, p.ID); err != nil {
							return fmt.Errorf("data: delete person: %w", err)
						}
					}
					projects[p.ProjectID] = append(projects[p.ProjectID], personChange(p.ID))
				}
				// In one order, so that two deletes lock projects' seqs alike.
				for _, p := range slices.Sorted(maps.Keys(projects)) {
					if err := s.bumpWatchVersion(ctx, tx, p, projects[p]...); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			return &DeleteWatchlistPeopleResponse{DeletedCount: len(ps)}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeWatchlistPeople", Summary: "List watchlist people by name, with their lists and reference faces (ids, boxes, algorithm and dimension; never the embeddings), filtered by PersonIds and WatchlistIds. Without ProjectId: every project where the caller's roles grant it.", Permission: watchlistRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeWatchlistPeopleRequest) (*DescribeWatchlistPeopleResponse, error) {
			off, lim := r.Page()
			ps, total, err := s.people(ctx, c.ListIn(r.ProjectId, nil), r.PersonIds, r.WatchlistIds, off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeWatchlistPeopleResponse{TotalCount: total, PersonSet: make([]WatchPersonInfo, 0, len(ps))}
			for _, p := range ps {
				out.PersonSet = append(out.PersonSet, WatchPersonInfo{PersonId: p.ID, ProjectId: p.ProjectID, Name: p.Name, ExternalId: p.ExternalID,
					Notes: p.Notes, WatchlistIds: p.Lists, FaceSet: faceInfos(p.Faces), CreatedTime: msTime(p.CreatedAt), UpdatedTime: msTime(p.UpdatedAt)})
			}
			return out, nil
		})
}

func checkPerson(name, externalID, notes string) error {
	if err := checkText("Name", name, maxWatchNameLen, true); err != nil {
		return err
	}
	if err := checkText("ExternalId", externalID, maxWatchNameLen, false); err != nil {
		return err
	}
	return checkText("Notes", notes, maxWatchTextLen, false)
}
