package push

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
)

// Webhook secrets sealed under master key A open after a rotation to B
// re-encrypted them; gRPC subscriptions hold none and are left alone.
func TestRotateMasterKey(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	a := bytes.Repeat([]byte{0xa}, secrets.KeySize)
	b := bytes.Repeat([]byte{0xb}, secrets.KeySize)
	boxA, _ := secrets.New(a)
	staged, _ := secrets.Keyring{Keys: [][]byte{a}}.Stage(b)
	promoted, _ := staged.Promote()
	boxB, _ := secrets.NewKeyring(promoted)
	withBox := func(box *secrets.Box) *Service {
		return e.newService(func(c *Config) { c.Box = box })
	}
	sc := Scope{ProjectID: "pa", AppID: "app-a"}
	want := map[string]string{}
	for i := range 4 {
		sub := &Subscription{Name: fmt.Sprintf("s%d", i), Channel: ChannelWebhook, URL: "https://hooks.example.com/x"}
		if i == 3 {
			sub = &Subscription{Name: "stream", Channel: "grpc"}
		}
		if err := withBox(boxA).Create(ctx, sc, sub); err != nil {
			t.Fatal(err)
		}
		want[sub.ID] = sub.Secret
	}
	n, err := reseal.Run(ctx, e.db, boxB, SealedColumns()[0], nil)
	if err != nil || n.Resealed != 3 || n.Current != 1 {
		t.Fatalf("reseal: %+v, %v", n, err)
	}
	for id, secret := range want {
		sub, err := withBox(boxB).Get(ctx, sc, id)
		if err != nil || sub.Secret != secret {
			t.Fatalf("subscription %s after rotation: %v (secret matches: %v)", id, err, err == nil && sub.Secret == secret)
		}
	}
}
