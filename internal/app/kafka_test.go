package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/bus"
	"github.com/tianshu-ai/tianshu/internal/event"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestPlatformOnKafka runs the whole platform with --bus kafka://: a task
// reads a topic and publishes its events, which a subscriber on the
// project's events topic receives. No Kafka broker is packaged for this
// machine: the cluster is franz-go's kfake, a real Kafka protocol server
// running in the test process (docs/bus-kafka.md says how to point the
// platform at a real cluster).
func TestPlatformOnKafka(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	url := "kafka://" + strings.Join(cluster.ListenAddrs(), ",")
	e := apptest.Start(t, apptest.Options{Args: []string{"--bus", url}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	ctx := context.Background()

	var mu sync.Mutex
	got := map[string]bool{}
	sub, err := e.P.Bus.Subscribe(ctx, event.Topic("default"), "kafka-reader", bus.SubscribeOptions{}, func(_ context.Context, m bus.Message) error {
		ev, err := event.Decode(m.Data)
		if err != nil {
			return nil
		}
		mu.Lock()
		got[ev.ID] = ev.Type == "tianshu.test.doubled"
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()

	flowID := c.mustCall("CreateFlow", map[string]any{"Document": echoFlow})["FlowId"].(string)
	taskID := c.mustCall("CreateTask", map[string]any{"Name": "doubler", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "topic", "Id": "in.numbers"}}})["TaskId"].(string)
	testenv.Eventually(t, 60*time.Second, "task Running", func() bool {
		r := c.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})
		return r["TaskSet"].([]any)[0].(map[string]any)["Status"] == "Running"
	})
	for i := range 10 {
		if _, err := e.P.Bus.Publish(ctx, "in.numbers", "cam-1", []byte(fmt.Sprintf(`{"n": %d}`, i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, "10 events over Kafka", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ok := range got {
			if ok {
				n++
			}
		}
		return n == 10
	})
}
