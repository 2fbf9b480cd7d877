package task_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/algorepo"
	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/pipeline"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
	"github.com/tianshu-ai/tianshu/internal/studio"
	"github.com/tianshu-ai/tianshu/internal/task"
)

// world is the centers that use one another's resources, over one real
// store and wired as the platform wires them (internal/app/inits.go).
type world struct {
	devices *devicecenter.Service
	algos   *algorepo.Service
	flows   *studio.Service
	tasks   *task.Service
}

func newWorld(t *testing.T, dialect string) *world {
	db := storetest.Open(t, dialect)
	box, _ := secrets.New(bytes.Repeat([]byte{7}, secrets.KeySize))
	log := slog.New(slog.DiscardHandler)
	w := &world{devices: devicecenter.New(db, box, nil, nil, log, nil), algos: algorepo.New(db, nil, log, time.Now)}
	w.flows = studio.New(db, studio.Options{Logger: log, Algorithms: w.algos, StoredAlgorithm: func(id string) bool { return !w.algos.IsBuiltin(id) }})
	w.tasks = task.NewService(db, w.flows.ResolveVersion, log, time.Now)
	w.flows.SetInUse(w.tasks.UsesFlow)
	w.tasks.SetDeviceLocator(w.devices.Locate)
	w.tasks.SetUseLocks(w.flows.LockForUse, w.devices.LockForUse)
	w.tasks.SetParamCheck(w.flows.CheckParams)
	return w
}

const noopFlow = `{"nodes": [{"id": "a", "kind": "noop"}]}`

// race runs use and del at once, rounds times, each round on fresh
// resources from setup, and fails when both succeed: a use must be refused
// with ResourceNotFound (or as gone, when gone says so), or the delete
// with ResourceInUse.
func race(t *testing.T, rounds int, gone func(error) bool, setup func(i int) (use, del func() error)) {
	t.Helper()
	both := 0
	for i := range rounds {
		use, del := setup(i)
		var useErr, delErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Go(func() { <-start; useErr = use() })
		wg.Go(func() { <-start; delErr = del() })
		close(start)
		wg.Wait()
		if useErr == nil && delErr == nil {
			both++
			continue
		}
		if useErr != nil && apiCode(useErr) != api.ResourceNotFound && (gone == nil || !gone(useErr)) {
			t.Errorf("round %d: use: %v; want success or ResourceNotFound", i, useErr)
		}
		if delErr != nil && apiCode(delErr) != api.ResourceInUse {
			t.Errorf("round %d: delete: %v; want success or ResourceInUse", i, delErr)
		}
	}
	if both > 0 {
		t.Errorf("in %d of %d rounds both the use and the delete succeeded", both, rounds)
	}
}

// unknownFlow reports the validation's refusal of a subflow deleted
// before the document was validated.
func unknownFlow(err error) bool {
	var ve *studio.ValidationError
	return errors.As(err, &ve) && strings.Contains(err.Error(), "unknown flow")
}

func apiCode(err error) api.Code {
	if e, ok := api.AsError(err); ok {
		return e.Code
	}
	return ""
}

// A delete of a device, a flow or an algorithm and the creation of what
// uses it are one decision, whatever the interleaving, on every dialect.
func TestDeleteAndUseAreOneDecision(t *testing.T) {
	const rounds = 30
	for _, dialect := range []string{"sqlite", "mysql", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t, dialect)
			flow, err := w.flows.Create(ctx, "", "shared", "", []byte(noopFlow), "")
			if err != nil {
				t.Fatal(err)
			}
			cam, err := w.newDevice(ctx, "shared")
			if err != nil {
				t.Fatal(err)
			}
			t.Run("CreateTask-DeleteDevice", func(t *testing.T) {
				race(t, rounds, nil, func(i int) (func() error, func() error) {
					id, err := w.newDevice(ctx, fmt.Sprintf("cam-%d", i))
					if err != nil {
						t.Fatal(err)
					}
					return func() error { return w.newTask(ctx, flow.ID, id) }, func() error { return w.devices.Delete(ctx, id) }
				})
			})
			t.Run("CreateTask-DeleteFlow", func(t *testing.T) {
				race(t, rounds, nil, func(i int) (func() error, func() error) {
					f, err := w.flows.Create(ctx, "", fmt.Sprintf("flow-%d", i), "", []byte(noopFlow), "")
					if err != nil {
						t.Fatal(err)
					}
					return func() error { return w.newTask(ctx, f.ID, cam) }, func() error { return w.flows.Delete(ctx, f.ID) }
				})
			})
			t.Run("CreateFlowWithSubflow-DeleteFlow", func(t *testing.T) {
				race(t, rounds, unknownFlow, func(i int) (func() error, func() error) {
					sub, err := w.flows.Create(ctx, "", fmt.Sprintf("sub-%d", i), "", []byte(noopFlow), "")
					if err != nil {
						t.Fatal(err)
					}
					doc := `{"nodes": [{"id": "s", "kind": "subflow", "config": {"flow": "` + sub.ID + `"}}]}`
					use := func() error {
						_, err := w.flows.Create(ctx, "", fmt.Sprintf("runs-%d", i), "", []byte(doc), "")
						return err
					}
					return use, func() error { return w.flows.Delete(ctx, sub.ID) }
				})
			})
			// An algorithm deleted before the document is validated is
			// unknown to the validation.
			unknown := func(err error) bool {
				var ve *studio.ValidationError
				return errors.As(err, &ve) && strings.Contains(err.Error(), "unknown algorithm")
			}
			t.Run("CreateFlow-DeleteAlgorithm", func(t *testing.T) {
				race(t, rounds, unknown, func(i int) (func() error, func() error) {
					a, err := w.algos.Create(ctx, "", fmt.Sprintf("alg-%d", i), "")
					if err != nil {
						t.Fatal(err)
					}
					if _, err := w.algos.CreateVersion(ctx, a.ID, "", endpointVersion(), false); err != nil {
						t.Fatal(err)
					}
					doc := `{"nodes": [{"id": "a", "kind": "algorithm", "config": {"algorithm": "` + a.ID + `"}, "inputs": {"image": "$input.image"}}]}`
					use := func() error {
						_, err := w.flows.Create(ctx, "", fmt.Sprintf("calls-%d", i), "", []byte(doc), "")
						return err
					}
					return use, func() error { return w.algos.Delete(ctx, a.ID) }
				})
			})
		})
	}
}

func (w *world) newDevice(ctx context.Context, name string) (string, error) {
	d := &devicecenter.Device{Name: name, Config: device.Config{Driver: "rtsp", Address: "rtsp://10.0.0.1/" + name}}
	err := w.devices.Create(ctx, d)
	return d.ID, err
}

func (w *world) newTask(ctx context.Context, flowID, deviceID string) error {
	return w.tasks.Create(ctx, &task.Task{Name: "t", FlowID: flowID, Sources: []pipeline.SourceSpec{{Type: "device", Id: deviceID}}}, false)
}

func endpointVersion() algorithm.Version {
	return algorithm.Version{
		Runtime:   algorithm.RuntimeEndpoint,
		Endpoints: []string{"http://127.0.0.1:9/"},
		Contract: algorithm.Contract{
			Inputs:  []algorithm.Field{{Name: "image", Type: algorithm.TypeImage, Required: true}},
			Outputs: []algorithm.Field{{Name: "found", Type: algorithm.TypeBool}},
		},
	}
}
