package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/data"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestEdgeWatchlistSync: the cloud's watchlists reach its edge node over
// the link, and a match node placed on the edge matches with them there.
// A person with a reference embedding on a cloud list is hit by an edge
// task (a match node on a constant embedding, per frame of a replay
// camera of the edge's); the hit records reach the cloud by
// store-and-forward. Taking the person off the list on the cloud reaches
// the edge at the next sync, which replaces the edge's own lists too, and
// the edge stops hitting. Two platforms, each on its own SQLite store.
func TestEdgeWatchlistSync(t *testing.T) {
	w := edgeWatch(t, "site-watch", func(cc *sdk) {
		cc.mustCall("CreateWatchlist", map[string]any{"Name": "dormant", "Threshold": 0.5, "Enabled": false})
	})
	cc, ec, listID, personID, taskID, devID := w.cc, w.ec, w.listID, w.personID, w.taskID, w.devID
	hits := func(c *sdk) int {
		return int(c.mustCall("SearchRecords", map[string]any{"Types": []string{"watchlist_hit"}, "Limit": 1})["TotalCount"].(float64))
	}
	var last map[string]any
	testenv.EventuallyExplained(t, 90*time.Second, "the edge's hits on Ann in the cloud", func() bool {
		return hits(cc) >= 3
	}, func() string {
		last = cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
		return toJSON(last)
	})
	r := cc.mustCall("SearchRecords", map[string]any{"Types": []string{"watchlist_hit"}, "Limit": 1})["RecordSet"].([]any)[0].(map[string]any)
	if s := toJSON(r); !strings.Contains(s, personID) || !strings.Contains(s, listID) || r["DeviceId"] != devID {
		t.Errorf("a hit in the cloud: %s", s)
	}
	tk := cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
	if tk["Status"] != "Running" || tk["EdgeError"] != "" {
		t.Errorf("the task as the cloud sees it: %s", toJSON(tk))
	}
	// The edge holds the cloud's lists, the disabled one included, under
	// the cloud's ids.
	lists := ec.mustCall("DescribeWatchlists", map[string]any{})
	if lists["TotalCount"] != float64(2) || !strings.Contains(toJSON(lists), listID) {
		t.Errorf("the edge's lists: %s", toJSON(lists))
	}

	// A list made on the edge's own API is replaced at the next change
	// on the cloud: Ann off the cloud's list.
	ec.mustCall("CreateWatchlist", map[string]any{"Name": "local", "Threshold": 0.5})
	cc.mustCall("ModifyWatchlistPerson", map[string]any{"PersonId": personID, "WatchlistIds": []string{}})
	testenv.EventuallyExplained(t, 30*time.Second, "the edge's lists to be the cloud's again, Ann on none", func() bool {
		lists = ec.mustCall("DescribeWatchlists", map[string]any{})
		s := toJSON(lists)
		return lists["TotalCount"] == float64(2) && !strings.Contains(s, `"local"`) &&
			ec.mustCall("DescribeWatchlistPeople", map[string]any{"WatchlistIds": []string{listID}})["TotalCount"] == float64(0)
	}, func() string { return toJSON(lists) })
	// Once the edge's matcher has reloaded (it answers no hit for Ann's
	// embedding), and the frames it matched before have been stored, no
	// frame hits.
	testenv.Eventually(t, 30*time.Second, "the edge's matcher without Ann", func() bool {
		h, err := w.edge.P.Data.MatchFace(context.Background(), "default", []float32{0.6, 0.8})
		return err == nil && len(h) == 0
	})
	time.Sleep(500 * time.Millisecond)
	n := hits(ec)
	time.Sleep(2 * time.Second) // ten frames
	if after := hits(ec); after != n {
		t.Errorf("the edge hit %d times after Ann left the list", after-n)
	}
	testenv.Eventually(t, 30*time.Second, "every edge hit in the cloud", func() bool { return hits(cc) == n })
	t.Logf("%d hits before the change", n)
}

// TestEdgeWatchlistsTooLarge: a project's watchlists over one link
// message reach the edge in chunks, and a set over the cloud's
// --edge.watchlist-bytes (16 MiB here) is refused, not sent in part: the
// edge keeps matching with the set it applied before, and its task with a
// match node reports the refusal, naming the bound, in the cloud's view of
// the task.
func TestEdgeWatchlistsTooLarge(t *testing.T) {
	ctx := context.Background()
	const bound = 16 << 20
	w := edgeWatch(t, "site-big", nil, "--edge.watchlist-bytes", fmt.Sprint(bound))
	cloud, cc, ec, listID, taskID := w.cloud, w.cc, w.ec, w.listID, w.taskID
	hits := func() int {
		return int(ec.mustCall("SearchRecords", map[string]any{"Types": []string{"watchlist_hit"}, "Limit": 1})["TotalCount"].(float64))
	}
	testenv.Eventually(t, 90*time.Second, "the edge hitting Ann", func() bool { return hits() > 0 })
	task := func() map[string]any {
		return cc.mustCall("DescribeTasks", map[string]any{"TaskIds": []string{taskID}})["TaskSet"].([]any)[0].(map[string]any)
	}
	people := func() any { return ec.mustCall("DescribeWatchlistPeople", map[string]any{"Limit": 1})["TotalCount"] }

	// The cloud's set grows past the link's message: 2,000 more people
	// with a reference face of 1024 values each (about 11 MB of JSON).
	set, err := cloud.P.Data.ExportWatchlists(ctx, "default", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	vec := make([]byte, 4*1024)
	for i := range vec {
		vec[i] = byte(i * 7)
	}
	enc := base64.StdEncoding.EncodeToString(vec)
	grow := func(from, to int) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("psn-big%05d", i)
			set.People = append(set.People, data.SyncPerson{ID: id, Name: id})
			set.Faces = append(set.Faces, data.SyncFace{ID: fmt.Sprintf("wf-big%05d", i), PersonID: id, Dim: 1024, Vector: enc})
			set.Members = append(set.Members, data.SyncMember{ListID: listID, PersonID: id})
		}
		if err := cloud.P.Data.ReplaceWatchlists(ctx, "default", set); err != nil {
			t.Fatal(err)
		}
	}
	grow(0, 2000)
	var tk map[string]any
	testenv.EventuallyExplained(t, 60*time.Second, "the 2,001 people on the edge, no error", func() bool {
		tk = task()
		return people() == float64(2001) && tk["EdgeError"] == ""
	}, func() string { return fmt.Sprintf("%v people on the edge; %s", people(), toJSON(tk)) })
	// It went in chunks: three of at most 4 MiB.
	if c := metricValue(t, cloud, "tianshu_edge_watchlists_sync_total", map[string]string{"outcome": "chunked"}); c < 1 {
		t.Errorf("%v sets announced in chunks", c)
	}
	if c := metricValue(t, cloud, "tianshu_edge_watchlist_chunks_total", map[string]string{"outcome": "sent"}); c < 3 {
		t.Errorf("%v chunks sent", c)
	}
	n := hits()
	testenv.Eventually(t, 30*time.Second, "the edge still hitting Ann with the large set", func() bool { return hits() > n })

	// Past the bound (4,000 people, about 22 MB): refused, naming it.
	grow(2000, 4000)
	testenv.EventuallyExplained(t, 30*time.Second, "the task's EdgeError naming the bound", func() bool {
		tk = task()
		msg, _ := tk["EdgeError"].(string)
		return strings.Contains(msg, "watchlists not synced") && strings.Contains(msg, fmt.Sprintf("%d bytes", bound)) &&
			strings.Contains(msg, "--edge.watchlist-bytes")
	}, func() string { return toJSON(tk) })
	t.Logf("EdgeError: %s", tk["EdgeError"])
	// The edge matches on with the set it had: 2,001 people, Ann hit.
	if n := people(); n != float64(2001) {
		t.Errorf("the edge holds %v people", n)
	}
	n = hits()
	testenv.Eventually(t, 30*time.Second, "the edge still hitting Ann", func() bool { return hits() > n })
	if tk["Status"] != "Running" {
		t.Errorf("the task: %s", toJSON(tk))
	}
	// Trimmed back to Ann and one more person, the set syncs again and
	// the error clears.
	set.People, set.Faces, set.Members = set.People[:2], set.Faces[:2], set.Members[:2]
	if err := cloud.P.Data.ReplaceWatchlists(ctx, "default", set); err != nil {
		t.Fatal(err)
	}
	testenv.EventuallyExplained(t, 30*time.Second, "the trimmed set on the edge, the error cleared", func() bool {
		tk = task()
		return tk["EdgeError"] == "" && people() == float64(2)
	}, func() string { return toJSON(tk) })
}

// edgeWatchSetup is a cloud and its edge node running a task with a match
// node on the embedding [0.6, 0.8], per frame of a replay camera of the
// edge's, and Ann, whose reference is that embedding, on the cloud's list
// "wanted" (threshold 0.9).
type edgeWatchSetup struct {
	cloud, edge                     *apptest.Env
	cc, ec                          *sdk
	listID, personID, taskID, devID string
}

// edgeWatch starts an edgeWatchSetup, the cloud with cloudArgs besides;
// more adds to the cloud's lists before the edge starts.
func edgeWatch(t *testing.T, name string, more func(cc *sdk), cloudArgs ...string) edgeWatchSetup {
	t.Helper()
	cloud, cc, media, nodeID, token := cloudWithEdgeNode(t, name, cloudArgs...)
	w := edgeWatchSetup{cloud: cloud, cc: cc}
	w.listID = cc.mustCall("CreateWatchlist", map[string]any{"Name": "wanted", "Threshold": 0.9})["WatchlistId"].(string)
	w.personID = cc.mustCall("CreateWatchlistPerson", map[string]any{"Name": "Ann", "ExternalId": "ann-1", "WatchlistIds": []string{w.listID},
		"Faces": []any{map[string]any{"Embedding": []float64{0.6, 0.8}}}})["PersonId"].(string)
	if more != nil {
		more(cc)
	}
	flowID := cc.mustCall("CreateFlow", map[string]any{"Document": `{"name": "edge-match", "nodes": [
	  {"id": "m", "kind": "match", "inputs": {"embedding": [0.6, 0.8]}}]}`})["FlowId"].(string)
	w.devID = cc.mustCall("CreateDevice", map[string]any{"Name": "cam", "Driver": "replay", "Address": media, "Fps": 5, "EdgeNode": nodeID})["DeviceId"].(string)
	w.taskID = cc.mustCall("CreateTask", map[string]any{"Name": "watch", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": w.devID}}})["TaskId"].(string)
	w.edge = apptest.Start(t, apptest.Options{Args: []string{"--target", "edge", "--cloud", cloud.Endpoint, "--join-token", token, "--edge.heartbeat", "200ms", "--media.root", media}})
	w.ec = newSDK(t, w.edge.Host, apptest.AdminSecretID, apptest.AdminSecretKey)
	return w
}
