package push

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/event"
)

// ReplaySubscription takes a StartSeq from 1 up to the topic's head + 1
// (the next event): a sequence beyond it, or beyond int64 where the store
// would wrap it negative, is refused naming StartSeq instead of leaving a
// subscription that silently delivers nothing.
func TestReplayStartSeqRange(t *testing.T) {
	e := newEnv(t, nil)
	id := e.mustCall(callerA, "CreateSubscription", map[string]any{"Channel": map[string]any{"Type": "grpc"}})["SubscriptionId"].(string)
	publish(t, e.bus, "pa", "ev", "tianshu.record.created", 3, 1, nil)
	head, err := e.bus.(TopicHead).LastSeq(t.Context(), event.Topic("pa"))
	if err != nil || head == 0 {
		t.Fatalf("head = %d, %v", head, err)
	}
	replay := func(seq string) error {
		_, err := e.call(callerA, "ReplaySubscription", json.RawMessage(`{"SubscriptionId": "`+id+`", "StartSeq": `+seq+`}`))
		return err
	}
	for _, seq := range []string{"9223372036854775808", "18446744073709551615", strconv.FormatUint(head+2, 10)} {
		err := replay(seq)
		ae, ok := api.AsError(err)
		if !ok || ae.Code != api.InvalidParameterValue || !strings.HasPrefix(ae.Message, "StartSeq: ") {
			t.Errorf("StartSeq %s: %v; want InvalidParameterValue naming StartSeq", seq, err)
		}
	}
	for _, seq := range []string{"1", strconv.FormatUint(head, 10), strconv.FormatUint(head+1, 10)} {
		if err := replay(seq); err != nil {
			t.Errorf("StartSeq %s: %v", seq, err)
		}
	}
	var stored int64
	if err := e.db.QueryRow(t.Context(), "SELECT start_seq FROM subscriptions WHERE id = ?", id).Scan(&stored); err != nil || stored != int64(head+1) {
		t.Fatalf("stored start_seq = %d, %v; want %d", stored, err, head+1)
	}
}
