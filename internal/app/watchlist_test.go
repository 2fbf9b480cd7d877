package app_test

import (
	"encoding/base64"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestWatchlistHitReachesWebhook is issue #29's watchlist check on real
// parts: two replay cameras, "gate" over the demo's astronaut photo and
// "hall" over its facemark photo (another person), each a task of the
// gallery's face-watchlist template, which detects faces (built-in
// cascade), follows them, crops and embeds each with the face-attributes
// package (faceres, a supervised Node.js process), stores it and matches
// it against the project's watchlists. A watchlist holds the astronaut,
// from another framing of her photo (skimage's) sent as a reference photo.
// A webhook subscriber (a real HTTP server) receives tianshu.watchlist.hit
// for her at the gate, the other person hits nothing, and the hits are
// records that SearchRecords finds.
func TestWatchlistHitReachesWebhook(t *testing.T) {
	node := testenv.NeedCommand(t, "node")
	if _, err := os.Stat(filepath.Join(faceAttributesDir, "node_modules", "@vladmandic", "human-models", "models", "faceres.bin")); err != nil {
		testenv.Unavailable(t, "face-attributes-node has no node_modules: run npm ci --omit=dev --ignore-scripts --prefix examples/algorithms/face-attributes-node")
	}
	realNode, err := filepath.EvalSymlinks(node)
	if err != nil {
		t.Fatal(err)
	}
	media := t.TempDir()
	gate, hall := filepath.Join(media, "gate"), filepath.Join(media, "hall")
	for _, d := range []string{gate, hall} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "../../examples/demo/photos/1-astronaut.jpg", filepath.Join(gate, "1.jpg"))
	copyFile(t, "../../examples/demo/photos/4-facemark.jpg", filepath.Join(hall, "1.jpg"))
	reference := cropJPEG(t, skimagePhoto(t, "astronaut.png"), image.Rect(60, 0, 460, 400))

	e := apptest.Start(t, apptest.Options{Args: []string{"--exec.allow", filepath.Dir(node) + "," + filepath.Dir(realNode), "--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	// The webhook subscriber.
	var mu sync.Mutex
	var hits []map[string]any
	// From each hit's frame (the event's time: when the camera's frame was
	// read) to its arrival here, as a figure (not asserted: shared machine).
	var latencies []time.Duration
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string         `json:"type"`
			Time time.Time      `json:"time"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err == nil && ev.Type == "tianshu.watchlist.hit" {
			mu.Lock()
			hits = append(hits, ev.Data)
			latencies = append(latencies, time.Since(ev.Time))
			mu.Unlock()
		}
	}))
	defer receiver.Close()
	c.mustCall("CreateSubscription", map[string]any{"Name": "alarms", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": receiver.URL}},
		"Filter": map[string]any{"Types": []string{"tianshu.watchlist.*"}}})

	algID := onboardFaceres(t, c)

	// The watchlist and its person, from a reference photo.
	listID := c.mustCall("CreateWatchlist", map[string]any{"Name": "wanted", "Threshold": 0.85})["WatchlistId"].(string)
	var personID string
	testenv.Eventually(t, 90*time.Second, "the astronaut on the watchlist", func() bool {
		r, code := c.call("CreateWatchlistPerson", map[string]any{"Name": "astronaut", "ExternalId": "nasa-1", "WatchlistIds": []string{listID},
			"Faces": []any{map[string]any{"Image": base64.StdEncoding.EncodeToString(reference), "AlgorithmId": algID}}})
		if code != "" {
			t.Logf("CreateWatchlistPerson: %s; retrying", code)
			return false
		}
		personID = r["PersonId"].(string)
		return true
	})
	// A photo without a face is refused, naming the face.
	if _, code := c.call("CreateWatchlistPerson", map[string]any{"Name": "nobody", "Faces": []any{map[string]any{
		"Image": base64.StdEncoding.EncodeToString(jpegImage(t, 320, 240, 128)), "AlgorithmId": algID}}}); code != "InvalidParameterValue" {
		t.Errorf("a reference photo without a face: %q; want InvalidParameterValue", code)
	}

	// The gallery's face-watchlist template, with the embedding algorithm
	// for its placeholder: as a user would set it up.
	flowID := c.mustCall("CreateFlow", map[string]any{"Name": "watch", "TemplateName": "face-watchlist",
		"TemplateAlgorithms": map[string]string{"alg-face-descriptor": algID}})["FlowId"].(string)
	devs := map[string]string{}
	var tasks []string
	for _, name := range []string{"gate", "hall"} {
		devs[name] = c.mustCall("CreateDevice", map[string]any{"Name": name, "Driver": "replay", "Address": filepath.Join(media, name), "Fps": 1})["DeviceId"].(string)
		tasks = append(tasks, c.mustCall("CreateTask", map[string]any{"Name": "watch-" + name, "FlowId": flowID, "Start": true,
			"Sources": []any{map[string]any{"Type": "device", "Id": devs[name]}}})["TaskId"].(string))
	}

	// The face records by id, with their device.
	faceDevices := func() map[string]string {
		r := c.mustCall("SearchRecords", map[string]any{"TaskIds": tasks, "Types": []string{"face"}, "Limit": 100})
		out := map[string]string{}
		for _, x := range r["RecordSet"].([]any) {
			m := x.(map[string]any)
			out[m["RecordId"].(string)] = m["DeviceId"].(string)
		}
		return out
	}
	testenv.EventuallyExplained(t, 240*time.Second, "a hit on the webhook, and face records on both cameras", func() bool {
		mu.Lock()
		n := len(hits)
		mu.Unlock()
		seen := map[string]bool{}
		for _, d := range faceDevices() {
			seen[d] = true
		}
		return n > 0 && seen[devs["gate"]] && seen[devs["hall"]]
	}, func() string {
		var b strings.Builder
		b.WriteString(toJSON(faceDevices()))
		for _, id := range tasks {
			b.WriteString("\nstats " + toJSON(c.mustCall("DescribeTaskStats", map[string]any{"TaskId": id})))
		}
		return b.String()
	})
	faces := faceDevices()
	mu.Lock()
	got := append([]map[string]any(nil), hits...)
	t.Logf("frame → webhook latency of the hits (detection, crop, embedding, store, match, hit record, push): %v", latencies)
	mu.Unlock()
	for _, h := range got {
		t.Logf("hit: person %v, similarity %v, device %v", h["PersonName"], h["Similarity"], faces[h["FaceRecordId"].(string)])
		if h["PersonId"] != personID || h["WatchlistId"] != listID || h["Similarity"].(float64) < 0.85 || h["RecordId"] == "" {
			t.Errorf("hit %v", h)
		}
		if d := faces[h["FaceRecordId"].(string)]; d != devs["gate"] {
			t.Errorf("a hit for a face that is not the astronaut's (device %v): %v", d, h)
		}
	}
	// The hit carries its crop's signed URL: a subscriber shows the face
	// without calling back.
	if len(got) > 0 {
		u, _ := got[0]["CropUrl"].(string)
		resp, err := http.Get(u)
		if err != nil {
			t.Fatalf("the hit's CropUrl %q: %v", u, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || len(b) < 1000 {
			t.Errorf("the hit's CropUrl answers %s, %s, %d bytes; want the crop as a JPEG", resp.Status, resp.Header.Get("Content-Type"), len(b))
		}
	}
	// The hits are records, with the face's crop, found by SearchRecords.
	r := c.mustCall("SearchRecords", map[string]any{"Types": []string{"watchlist_hit"}, "Conditions": []any{
		map[string]any{"Field": "PersonId", "Value": personID}, map[string]any{"Field": "Similarity", "Op": ">=", "Value": 0.85}}})
	if r["TotalCount"].(float64) < 1 {
		t.Fatalf("SearchRecords of the hits: %v", toJSON(r))
	}
	hit := r["RecordSet"].([]any)[0].(map[string]any)
	if len(hit["ObjectUrls"].([]any)) != 1 || hit["DeviceId"] != devs["gate"] {
		t.Errorf("hit record without its crop or not of the gate: %v", toJSON(hit))
	}
	if r := c.mustCall("SearchRecords", map[string]any{"Types": []string{"watchlist_hit"}, "DeviceIds": []string{devs["hall"]}}); r["TotalCount"].(float64) != 0 {
		t.Errorf("the other person hit: %v", toJSON(r))
	}
	// Managing watchlists is audited, naming the person.
	testenv.Eventually(t, 30*time.Second, "CreateWatchlistPerson in the audit log", func() bool {
		r := c.mustCall("DescribeAuditEvents", map[string]any{"Filters": []map[string]any{{"Name": "Action", "Values": []string{"CreateWatchlistPerson"}}}})
		for _, ev := range r["AuditEventSet"].([]any) {
			if ev.(map[string]any)["Resource"] == personID {
				return true
			}
		}
		return false
	})
	for _, id := range tasks {
		c.mustCall("StopTask", map[string]any{"TaskId": id})
	}
}
