package devicecenter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/device"
	"github.com/tianshu-ai/tianshu/internal/devicecenter"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
	"github.com/tianshu-ai/tianshu/internal/store/storetest"
)

// Device passwords sealed under master key A open on every replica through
// a rotation to B, one cut short included; devices without a password stay
// without one.
func TestRotateMasterKey(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := bytes.Repeat([]byte{0xa}, secrets.KeySize)
		b := bytes.Repeat([]byte{0xb}, secrets.KeySize)
		staged, _ := secrets.Keyring{Keys: [][]byte{a}}.Stage(b)
		promoted, _ := staged.Promote()
		boxA, _ := secrets.New(a)
		stagedBox, _ := secrets.NewKeyring(staged)
		newBox, _ := secrets.NewKeyring(promoted)
		log := slog.New(slog.DiscardHandler)
		center := func(box *secrets.Box) *devicecenter.Service {
			return devicecenter.New(db, box, nil, nil, log, nil)
		}

		passwords := map[string]string{}
		for i := range 5 {
			pw := fmt.Sprintf("pa55-%d", i)
			if i == 2 {
				pw = "" // no credentials
			}
			d := &devicecenter.Device{Name: fmt.Sprintf("cam%d", i),
				Config: device.Config{Driver: "rtsp", Address: fmt.Sprintf("rtsp://10.0.0.%d/live", i+1), Username: "admin", Password: pw}}
			if err := center(boxA).Create(ctx, d); err != nil {
				t.Fatal(err)
			}
			passwords[d.ID] = pw
		}
		check := func(when string, boxes ...*secrets.Box) {
			t.Helper()
			for _, box := range boxes {
				for id, pw := range passwords {
					d, err := center(box).Get(ctx, id)
					if err != nil {
						t.Fatalf("%s, keys %v, device %s: %v", when, box.KeyIDs(), id, err)
					}
					if d.Config.Password != pw {
						t.Fatalf("%s: device %s password %q, want %q", when, id, d.Config.Password, pw)
					}
				}
			}
		}
		check("before", boxA, stagedBox, newBox)

		col := devicecenter.SealedColumns()[0]
		cctx, cancel := context.WithCancel(ctx)
		n, err := reseal.Run(cctx, db, newBox, col, func(c reseal.Counts) {
			if c.Resealed == 2 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || n.Resealed != 2 {
			t.Fatalf("cut-short run: %+v, %v", n, err)
		}
		check("midway", stagedBox, newBox)

		n, err = reseal.Run(ctx, db, newBox, col, nil)
		if err != nil || n.Resealed != 2 || n.Current != 3 {
			t.Fatalf("rerun: %+v, %v; want 2 resealed, 3 current (2 done, 1 empty)", n, err)
		}
		check("after", stagedBox, newBox)
		st, err := reseal.Status(ctx, db, newBox, col)
		if err != nil || st[secrets.KeyID(b)] != 4 || st[""] != 1 || len(st) != 2 {
			t.Fatalf("status %v, %v", st, err)
		}

		// The replica that never learned B names the key it lacks.
		for id, pw := range passwords {
			_, err := center(boxA).Get(ctx, id)
			if pw == "" {
				if err != nil {
					t.Fatal(err)
				}
				continue
			}
			if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), secrets.KeyID(b)) {
				t.Fatalf("box of A alone: %v", err)
			}
		}
	})
}
