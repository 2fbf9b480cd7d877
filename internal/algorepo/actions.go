package algorepo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/flow"
	"github.com/tianshu-ai/tianshu/internal/media"
)

var (
	algRead  = api.Permission{Resource: "algorithm", Access: api.Read}
	algWrite = api.Permission{Resource: "algorithm", Access: api.Write}
)

// CreateAlgorithmRequest is the request of CreateAlgorithm.
type CreateAlgorithmRequest struct {
	ProjectId   string `json:"ProjectId" validate:"max=64"`
	Name        string `json:"Name" validate:"required,max=128"`
	Description string `json:"Description" validate:"max=1024"`
}

// CreateAlgorithmResponse is the response of CreateAlgorithm.
type CreateAlgorithmResponse struct {
	AlgorithmId string `json:"AlgorithmId"`
}

// DescribeAlgorithmsRequest is the request of DescribeAlgorithms.
type DescribeAlgorithmsRequest struct {
	ProjectId    string       `json:"ProjectId" validate:"max=64"`
	AlgorithmIds []string     `json:"AlgorithmIds" validate:"max=100"`
	Filters      []api.Filter `json:"Filters" validate:"max=10"`
	api.Paging
}

// AlgorithmInfo is an algorithm as DescribeAlgorithms returns it.
type AlgorithmInfo struct {
	AlgorithmId    string      `json:"AlgorithmId"`
	ProjectId      string      `json:"ProjectId"`
	Name           string      `json:"Name"`
	Description    string      `json:"Description"`
	CurrentVersion string      `json:"CurrentVersion"`
	Canary         *CanaryInfo `json:"Canary,omitempty"`
	Builtin        bool        `json:"Builtin"`
	CreatedTime    string      `json:"CreatedTime,omitempty"`
}

// CanaryInfo is an algorithm's canary: the share of cameras (of the device
// groups, or all) whose messages call Version instead of the current one.
type CanaryInfo struct {
	Version      string   `json:"Version"`
	Percent      int      `json:"Percent"`
	DeviceGroups []string `json:"DeviceGroups"`
}

// SetAlgorithmCanaryRequest starts, changes or (Version empty) ends a canary.
type SetAlgorithmCanaryRequest struct {
	AlgorithmId  string   `json:"AlgorithmId" validate:"required,max=64"`
	Version      string   `json:"Version" validate:"max=64"`
	Percent      int      `json:"Percent" validate:"min=0,max=100"`
	DeviceGroups []string `json:"DeviceGroups" validate:"max=100"`
}

// PromoteAlgorithmCanaryResponse names the version that became current.
type PromoteAlgorithmCanaryResponse struct {
	CurrentVersion string `json:"CurrentVersion"`
}

// DescribeAlgorithmsResponse is the response of DescribeAlgorithms.
type DescribeAlgorithmsResponse struct {
	TotalCount   int             `json:"TotalCount"`
	AlgorithmSet []AlgorithmInfo `json:"AlgorithmSet"`
}

// CreateAlgorithmVersionRequest is the request of CreateAlgorithmVersion.
type CreateAlgorithmVersionRequest struct {
	AlgorithmId string `json:"AlgorithmId" validate:"required,max=64"`
	// Version names the version; default: the next number.
	Version string `json:"Version" validate:"max=64"`
	// Definition is the version: contract, protocol (tianshu-v1, oip-v2,
	// http-mapped), runtime (endpoint, process, container), endpoints,
	// package, replicas, resources, batch, timeout, mapping scripts; or
	// serving, the descriptor of a model-file version (serving runtime,
	// input tensor, output decoding). See docs/algorithms.md.
	Definition json.RawMessage `json:"Definition" validate:"required"`
	// PackageBase64 is an install package (tar.gz or zip with a manifest)
	// for the process runtime, or for a container version whose image is
	// built from it (Definition.imageBuild), up to the request size
	// limit; larger ones are uploaded first and named by
	// Definition.package (a blob key).
	PackageBase64 string `json:"PackageBase64" validate:"max=4194304"`
	// PackageUploadId names a package uploaded with tus (CreateUploadToken,
	// then /files/), for packages of any size.
	PackageUploadId string `json:"PackageUploadId" validate:"max=64"`
	// ModelUploadId names a model file uploaded with tus, for a model-file
	// version (Definition.serving): it becomes serving.model. The file's
	// inputs and outputs are read and checked against the descriptor here,
	// and a mismatch is refused naming the tensor and its shape.
	ModelUploadId string `json:"ModelUploadId" validate:"max=64"`
	// RecognitionModelUploadId names the text recognizer's model file,
	// uploaded with tus, for an OCR version (Definition.serving.output.kind
	// ocr): it becomes serving.recognition.model and is checked against
	// serving.recognition like the main model.
	RecognitionModelUploadId string `json:"RecognitionModelUploadId" validate:"max=64"`
	// Start runs the version at once.
	Start bool `json:"Start"`
	// Secrets are values the version uses without showing them: an
	// http-mapped request script names one in a header value as
	// ${secret:NAME} (put in after the script ran), a process receives
	// NAME in its environment. At most 16, values up to 4096 bytes; they
	// are sealed, never returned, and masked in errors and logs. A
	// version is immutable: new values take a new version.
	Secrets []Secret `json:"Secrets" validate:"max=16"`
}

// CreateAlgorithmVersionResponse is the response of CreateAlgorithmVersion.
type CreateAlgorithmVersionResponse struct {
	AlgorithmId string `json:"AlgorithmId"`
	Version     string `json:"Version"`
}

// AlgorithmIdRequest names an algorithm.
type AlgorithmIdRequest struct {
	AlgorithmId string `json:"AlgorithmId" validate:"required,max=64"`
}

// AlgorithmVersionInfo is one version.
type AlgorithmVersionInfo struct {
	AlgorithmId  string          `json:"AlgorithmId"`
	Version      string          `json:"Version"`
	DesiredState string          `json:"DesiredState"`
	Definition   json.RawMessage `json:"Definition"`
	// Secrets names the version's secrets; each Value shows "***".
	Secrets     []Secret `json:"Secrets"`
	CreatedTime string   `json:"CreatedTime,omitempty"`
}

// DescribeAlgorithmVersionsResponse is the response of DescribeAlgorithmVersions.
type DescribeAlgorithmVersionsResponse struct {
	TotalCount int                    `json:"TotalCount"`
	VersionSet []AlgorithmVersionInfo `json:"VersionSet"`
}

// AlgorithmVersionRequest names a version ("" = current).
type AlgorithmVersionRequest struct {
	AlgorithmId string `json:"AlgorithmId" validate:"required,max=64"`
	Version     string `json:"Version" validate:"max=64"`
}

// InstanceInfo is one running instance on the answering node.
type InstanceInfo struct {
	Version     string   `json:"Version"`
	InstanceId  string   `json:"InstanceId"`
	Address     string   `json:"Address"`
	Status      string   `json:"Status"`
	Since       string   `json:"Since"`
	Restarts    int      `json:"Restarts"`
	LastError   string   `json:"LastError"`
	Pid         int      `json:"Pid"`
	Gpus        []int    `json:"Gpus"`
	Outstanding int64    `json:"Outstanding"`
	Breaker     string   `json:"Breaker"`
	LogLines    []string `json:"LogLines"`
	// Replicas: a container version's replicas in the cluster, as last
	// read (absent for other runtimes, and until the first read).
	Replicas *ReplicaInfo `json:"Replicas,omitempty"`
}

// ReplicaInfo is how far a container version's replicas have come.
type ReplicaInfo struct {
	Desired   int `json:"Desired"`
	Updated   int `json:"Updated"`
	Ready     int `json:"Ready"`
	Available int `json:"Available"`
	// Message says why replicas are missing, e.g. "pod …: ErrImagePull: …".
	Message string `json:"Message"`
}

// DescribeAlgorithmInstancesResponse is the response of DescribeAlgorithmInstances.
type DescribeAlgorithmInstancesResponse struct {
	InstanceSet []InstanceInfo `json:"InstanceSet"`
}

// InvokeAlgorithmRequest is the request of InvokeAlgorithm.
type InvokeAlgorithmRequest struct {
	AlgorithmId string `json:"AlgorithmId" validate:"required,max=64"`
	Version     string `json:"Version" validate:"max=64"`
	// Image is an encoded image (JPEG, PNG) in base64, passed as the
	// "image" input.
	Image string `json:"Image" validate:"max=4194304"`
	// Inputs are the other inputs, by name.
	Inputs    map[string]any `json:"Inputs"`
	TimeoutMs int            `json:"TimeoutMs" validate:"min=0,max=300000"`
}

// InvokeAlgorithmResponse is the response of InvokeAlgorithm.
type InvokeAlgorithmResponse struct {
	Outputs    map[string]any `json:"Outputs"`
	DurationUs int64          `json:"DurationUs"`
}

// Empty is the response of actions that return only a RequestId.
type Empty struct{}

// PackageStore keeps install packages: sent inline (PutPackage) or
// uploaded with tus (UploadedPackage returns the upload's blob key).
type PackageStore interface {
	PutPackage(ctx context.Context, algID, version string, data []byte) (key string, err error)
	UploadedPackage(ctx context.Context, projectID, uploadID string) (key string, err error)
	// UploadedModel returns the blob key of a completed model upload, and
	// OpenModel reads a model file by key (fs.ErrNotExist when absent).
	UploadedModel(ctx context.Context, projectID, uploadID string) (key string, err error)
	OpenModel(ctx context.Context, key string) (rc io.ReadCloser, size int64, err error)
}

// RegisterActions adds the repository's actions to reg; s and pkgs may be
// nil for docs.
func RegisterActions(reg *api.Registry, s *Service, pkgs PackageStore) {
	api.Register(reg, api.Spec{Name: "CreateAlgorithm", Summary: "Create an algorithm; its versions are added with CreateAlgorithmVersion.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateAlgorithmRequest) (*CreateAlgorithmResponse, error) {
			a, err := s.Create(ctx, r.ProjectId, r.Name, r.Description)
			if err != nil {
				return nil, err
			}
			c.SetResource(a.ID)
			return &CreateAlgorithmResponse{AlgorithmId: a.ID}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeAlgorithms", Summary: "List the built-in algorithms and a project's own. Filters: Name. Without ProjectId: the built-ins and the own algorithms of every project where the caller's roles grant it.", Permission: algRead, Union: true},
		func(ctx context.Context, c *api.Caller, r *DescribeAlgorithmsRequest) (*DescribeAlgorithmsResponse, error) {
			f, err := api.ParseFilters(r.Filters, "Name")
			if err != nil {
				return nil, err
			}
			off, lim := r.Page()
			as, total, err := s.ListIn(ctx, c.ListIn(r.ProjectId, nil), r.AlgorithmIds, f["Name"], off, lim)
			if err != nil {
				return nil, err
			}
			out := &DescribeAlgorithmsResponse{TotalCount: total, AlgorithmSet: make([]AlgorithmInfo, 0, len(as))}
			for _, a := range as {
				info := AlgorithmInfo{AlgorithmId: a.ID, ProjectId: a.ProjectID, Name: a.Name, Description: a.Description, CurrentVersion: a.CurrentVersion, Builtin: a.Builtin}
				if c := a.Canary; c != nil {
					info.Canary = &CanaryInfo{Version: c.Version, Percent: c.Percent, DeviceGroups: append([]string{}, c.DeviceGroups...)}
				}
				if !a.CreatedAt.IsZero() {
					info.CreatedTime = a.CreatedAt.Format(time.RFC3339)
				}
				out.AlgorithmSet = append(out.AlgorithmSet, info)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "CreateAlgorithmVersion", Summary: "Add an immutable version: contract, protocol, runtime and resources; with a package for the process runtime. Start runs it.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *CreateAlgorithmVersionRequest) (*CreateAlgorithmVersionResponse, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			def, err := decodeDefinition(r.Definition)
			if err != nil {
				return nil, err
			}
			def.FillServingDefaults()
			if err := SetSecrets(&def, r.Secrets); err != nil {
				return nil, err
			}
			c.SetResource(r.AlgorithmId)
			// A process version runs a program of the package on the
			// server: a platform privilege no project role holds.
			if def.Runtime == algorithm.RuntimeProcess && !c.PlatformAdmin() {
				return nil, api.Errorf(api.AuthFailureUnauthorizedOperation,
					"Definition.runtime: versions that run a program on the server (runtime %q) are created by platform admins only", algorithm.RuntimeProcess)
			}
			if err := checkImageBuild(&def, r.PackageBase64 != "" || r.PackageUploadId != ""); err != nil {
				return nil, err
			}
			// A container version takes a package only to build its image.
			takesPackage := def.Runtime == algorithm.RuntimeProcess || def.ImageBuild != nil
			if r.PackageBase64 != "" {
				data, err := base64.StdEncoding.DecodeString(r.PackageBase64)
				if err != nil {
					return nil, api.InvalidValue("PackageBase64", "not base64: %v", err)
				}
				if !takesPackage {
					return nil, api.InvalidValue("PackageBase64", "only the process runtime, and a container version with imageBuild, take a package")
				}
				if _, err := s.Get(ctx, r.AlgorithmId); err != nil {
					return nil, err
				}
				key, err := pkgs.PutPackage(ctx, r.AlgorithmId, r.Version, data)
				if err != nil {
					return nil, err
				}
				def.Package = key
			}
			if r.PackageUploadId != "" {
				if r.PackageBase64 != "" {
					return nil, api.InvalidValue("PackageUploadId", "give PackageBase64 or PackageUploadId, not both")
				}
				if !takesPackage {
					return nil, api.InvalidValue("PackageUploadId", "only the process runtime, and a container version with imageBuild, take a package")
				}
				a, err := s.Get(ctx, r.AlgorithmId)
				if err != nil {
					return nil, err
				}
				key, err := pkgs.UploadedPackage(ctx, a.ProjectID, r.PackageUploadId)
				if err != nil {
					return nil, err
				}
				def.Package = key
			}
			if err := onboardModel(ctx, s, pkgs, r, &def); err != nil {
				return nil, err
			}
			version := r.Version
			if def.ImageBuild != nil {
				// The image is built and pushed before the version is
				// stored, which records it by digest.
				if version, err = s.versionForBuild(ctx, r.AlgorithmId, version); err != nil {
					return nil, err
				}
				def.AlgorithmID, def.Version = r.AlgorithmId, version
				pkgField := "PackageBase64"
				if r.PackageUploadId != "" {
					pkgField = "PackageUploadId"
				}
				if err := s.buildImage(ctx, &def, pkgField); err != nil {
					return nil, err
				}
			}
			v, err := s.CreateVersion(ctx, r.AlgorithmId, version, def, r.Start)
			if err != nil {
				return nil, err
			}
			return &CreateAlgorithmVersionResponse{AlgorithmId: r.AlgorithmId, Version: v}, nil
		})
	registerImageActions(reg, s)
	registerServingActions(reg, s)
	api.Register(reg, api.Spec{Name: "DescribeAlgorithmVersions", Summary: "List an algorithm's versions with their definitions, newest first.", Permission: algRead},
		func(ctx context.Context, c *api.Caller, r *AlgorithmIdRequest) (*DescribeAlgorithmVersionsResponse, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			vs, err := s.Versions(ctx, r.AlgorithmId)
			if err != nil {
				return nil, err
			}
			out := &DescribeAlgorithmVersionsResponse{TotalCount: len(vs), VersionSet: make([]AlgorithmVersionInfo, 0, len(vs))}
			for _, v := range vs {
				b, _ := json.Marshal(v.Def)
				info := AlgorithmVersionInfo{AlgorithmId: r.AlgorithmId, Version: v.Def.Version, DesiredState: v.Desired, Definition: b, Secrets: MaskedSecrets(v.Def)}
				if !v.CreatedAt.IsZero() {
					info.CreatedTime = v.CreatedAt.Format(time.RFC3339)
				}
				out.VersionSet = append(out.VersionSet, info)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "DeleteAlgorithm", Summary: "Delete an algorithm and stop its versions; refused while a flow calls it.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *AlgorithmIdRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			c.SetResource(r.AlgorithmId)
			return &Empty{}, s.Delete(ctx, r.AlgorithmId)
		})
	api.Register(reg, api.Spec{Name: "StartAlgorithmVersion", Summary: "Run a version on every node with an algorithm runtime.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *AlgorithmVersionRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			c.SetResource(r.AlgorithmId + "@" + r.Version)
			return &Empty{}, s.SetDesired(ctx, r.AlgorithmId, r.Version, Running)
		})
	api.Register(reg, api.Spec{Name: "StopAlgorithmVersion", Summary: "Stop a version's instances everywhere.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *AlgorithmVersionRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			c.SetResource(r.AlgorithmId + "@" + r.Version)
			return &Empty{}, s.SetDesired(ctx, r.AlgorithmId, r.Version, Stopped)
		})
	api.Register(reg, api.Spec{Name: "SetAlgorithmCanary", Summary: "Send a share of the cameras (Percent, of DeviceGroups or all) to another running version, for flows that call the algorithm without naming a version; an empty Version ends the canary.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *SetAlgorithmCanaryRequest) (*Empty, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			c.SetResource(r.AlgorithmId)
			return &Empty{}, s.SetCanary(ctx, r.AlgorithmId, Canary{Version: r.Version, Percent: r.Percent, DeviceGroups: r.DeviceGroups})
		})
	api.Register(reg, api.Spec{Name: "PromoteAlgorithmCanary", Summary: "Make the canary's version the current one for every camera, and end the canary.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *AlgorithmIdRequest) (*PromoteAlgorithmCanaryResponse, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			c.SetResource(r.AlgorithmId)
			v, err := s.PromoteCanary(ctx, r.AlgorithmId)
			if err != nil {
				return nil, err
			}
			return &PromoteAlgorithmCanaryResponse{CurrentVersion: v}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeAlgorithmInstances", Summary: "The instances on the answering node: status, health, address, restarts, last error, recent log lines, a container version's replicas.", Permission: algRead},
		func(ctx context.Context, c *api.Caller, r *AlgorithmVersionRequest) (*DescribeAlgorithmInstancesResponse, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			st, err := s.Instances(ctx, r.AlgorithmId, r.Version)
			if err != nil {
				return nil, err
			}
			out := &DescribeAlgorithmInstancesResponse{InstanceSet: make([]InstanceInfo, 0, len(st))}
			for _, i := range st {
				info := InstanceInfo{Version: i.Version, InstanceId: i.ID, Address: i.Address, Status: i.Status, Since: i.Since.Format(time.RFC3339Nano),
					Restarts: i.Restarts, LastError: i.LastError, Pid: i.PID, Gpus: i.GPUs, Outstanding: i.Outstanding, Breaker: i.Breaker, LogLines: []string{}}
				if info.Gpus == nil {
					info.Gpus = []int{}
				}
				if r := i.Replicas; r != nil {
					info.Replicas = &ReplicaInfo{Desired: r.Desired, Updated: r.Updated, Ready: r.Ready, Available: r.Available, Message: r.Message}
				}
				for _, l := range i.Logs {
					info.LogLines = append(info.LogLines, l.Time.UTC().Format("15:04:05.000")+" "+l.Stream+" "+l.Text)
				}
				out.InstanceSet = append(out.InstanceSet, info)
			}
			return out, nil
		})
	api.Register(reg, api.Spec{Name: "InvokeAlgorithm", Summary: "Call a version once with an image (base64) and other inputs, for tests and the console.", Permission: algWrite, Invoke: true},
		func(ctx context.Context, c *api.Caller, r *InvokeAlgorithmRequest) (*InvokeAlgorithmResponse, error) {
			if err := s.visible(ctx, c, r.AlgorithmId); err != nil {
				return nil, err
			}
			inputs := api.NormalizeMap(r.Inputs)
			if r.Image != "" {
				b, err := base64.StdEncoding.DecodeString(r.Image)
				if err != nil {
					return nil, api.InvalidValue("Image", "not base64: %v", err)
				}
				inputs["image"] = media.Image{Bytes: b}
			}
			if _, err := s.Get(ctx, r.AlgorithmId); err != nil {
				return nil, err
			}
			timeout := 30 * time.Second
			if r.TimeoutMs > 0 {
				timeout = time.Duration(r.TimeoutMs) * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			start := time.Now()
			out, err := s.Invoke(ctx, flow.AlgorithmRef{ID: r.AlgorithmId, Version: r.Version}, inputs)
			if err != nil {
				return nil, invokeError(err)
			}
			return &InvokeAlgorithmResponse{Outputs: out, DurationUs: time.Since(start).Microseconds()}, nil
		})
}

// invokeError maps runtime failures to API codes.
func invokeError(err error) error {
	var ie *algorithm.InvokeError
	var re *algorithm.RemoteError
	switch {
	case errors.As(err, &re) && re.Status >= 400 && re.Status < 500 && re.Status != 429 && re.Status != 408:
		// The algorithm refused the input (undecodable image, bad params).
		return api.Errorf(api.InvalidParameterValue, "Inputs: the algorithm answered %d: %s", re.Status, re.Message)
	case errors.Is(err, algorithm.ErrUnknownAlgorithm):
		return api.Errorf(api.ResourceUnavailable, "version is not running: %v", err)
	case errors.Is(err, algorithm.ErrBadInput), errors.Is(err, algorithm.ErrInputTooLarge):
		return api.Errorf(api.InvalidParameterValue, "Inputs: %v", err)
	case errors.As(err, &ie) && (ie.Reason == "unavailable" || ie.Reason == "connection"):
		return api.Errorf(api.ResourceUnavailable, "%v", err)
	}
	return api.Errorf(api.FailedOperation, "%v", err)
}

// visible checks that the caller may act on an algorithm; algorithms of
// other projects are "not found" (built-ins belong to every project).
func (s *Service) visible(ctx context.Context, c *api.Caller, id string) error {
	a, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if !c.Sees(a.ProjectID) {
		return api.NotFound("AlgorithmId", id)
	}
	return nil
}

// onboardModel gives a model-file version its uploaded model, reads the
// model's inputs and outputs and checks them against the descriptor,
// filling the tensor names it left out.
func onboardModel(ctx context.Context, s *Service, pkgs PackageStore, r *CreateAlgorithmVersionRequest, def *algorithm.Version) error {
	if def.Serving == nil {
		if r.ModelUploadId != "" || r.RecognitionModelUploadId != "" {
			return api.InvalidValue("ModelUploadId", "only a model-file version (Definition.serving) takes a model file")
		}
		return nil
	}
	// Model files come only from the caller's own uploads: a blob key named
	// in the definition could be another project's file.
	if def.Serving.Model != "" {
		return api.InvalidValue("Definition.serving.model", "is set by the platform from ModelUploadId; upload the model over tus and name the upload")
	}
	if rec := def.Serving.Recognition; rec != nil && rec.Model != "" {
		return api.InvalidValue("Definition.serving.recognition.model", "is set by the platform from RecognitionModelUploadId")
	}
	if r.RecognitionModelUploadId != "" {
		if def.Serving.Recognition == nil {
			return api.InvalidValue("RecognitionModelUploadId", "only an OCR version (Definition.serving.recognition) takes a recognizer")
		}
		a, err := s.Get(ctx, r.AlgorithmId)
		if err != nil {
			return err
		}
		key, err := pkgs.UploadedModel(ctx, a.ProjectID, r.RecognitionModelUploadId)
		if err != nil {
			return err
		}
		def.Serving.Recognition.Model = key
	}
	if r.ModelUploadId != "" {
		a, err := s.Get(ctx, r.AlgorithmId)
		if err != nil {
			return err
		}
		key, err := pkgs.UploadedModel(ctx, a.ProjectID, r.ModelUploadId)
		if err != nil {
			return err
		}
		def.Serving.Model = key
	}
	if def.Serving.Model == "" {
		return api.Errorf(api.MissingParameter, "ModelUploadId: a model-file version needs its model file: upload it over tus and name the upload")
	}
	if err := def.Serving.Validate(); err != nil {
		return fieldError(err)
	}
	info, err := readModel(ctx, pkgs, def.Serving.Model, "Definition.serving.model", "ModelUploadId", r.ModelUploadId != "")
	if err != nil {
		return err
	}
	if err := algorithm.CheckServing(def.Serving, info); err != nil {
		return fieldError(err)
	}
	if rec := def.Serving.Recognition; rec != nil {
		info, err := readModel(ctx, pkgs, rec.Model, "Definition.serving.recognition.model", "RecognitionModelUploadId", r.RecognitionModelUploadId != "")
		if err != nil {
			return err
		}
		if err := algorithm.CheckRecognition(rec, info); err != nil {
			return fieldError(err)
		}
	}
	return nil
}

// readModel reads a model file's inputs and outputs; errors name field,
// or uploadField when the file was uploaded.
func readModel(ctx context.Context, pkgs PackageStore, key, field, uploadField string, uploaded bool) (*algorithm.ModelInfo, error) {
	rc, size, err := pkgs.OpenModel(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, api.InvalidValue(field, "no model file %q", key)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > algorithm.MaxModelBytes {
		return nil, api.InvalidValue(field, "the model file is %d bytes, over %d", size, int64(algorithm.MaxModelBytes))
	}
	info, err := algorithm.ReadModelInfo(rc, size)
	if errors.Is(err, algorithm.ErrNotONNX) {
		if uploaded {
			field = uploadField
		}
		return nil, api.InvalidValue(field, "the file is not an ONNX model (%v)", strings.TrimPrefix(err.Error(), algorithm.ErrNotONNX.Error()+": "))
	}
	if err != nil {
		return nil, fmt.Errorf("reading model %s: %w", key, err)
	}
	return info, nil
}

// fieldError turns an *algorithm.FieldError into InvalidParameterValue
// naming Definition.<field>.
func fieldError(err error) error {
	var fe *algorithm.FieldError
	if errors.As(err, &fe) {
		return api.InvalidValue("Definition."+fe.Field, "%s", fe.Msg)
	}
	return api.InvalidValue("Definition", "%v", err)
}
