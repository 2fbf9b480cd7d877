package app_test

import (
	"encoding/base64"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/app/apptest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// TestWatchlistHitReachesWebhook is issue #29's watchlist check on real
// parts: a replay camera over the demo's astronaut and facemark photos, a
// flow that detects faces (built-in cascade), crops and embeds each with
// the face-attributes package (faceres, a supervised Node.js process),
// stores it and matches it against the project's watchlists; a watchlist
// holds the astronaut, from another framing of her photo (skimage's) sent
// as a reference photo. A webhook subscriber (a real HTTP server) receives
// tianshu.watchlist.hit for her, the other person hits nothing, and the
// hits are records that SearchRecords finds.
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
	gate := filepath.Join(media, "gate")
	if err := os.MkdirAll(gate, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, "../../examples/demo/photos/1-astronaut.jpg", filepath.Join(gate, "1.jpg"))
	copyFile(t, "../../examples/demo/photos/4-facemark.jpg", filepath.Join(gate, "2.jpg"))
	reference := cropJPEG(t, skimagePhoto(t, "astronaut.png"), image.Rect(60, 0, 460, 400))

	e := apptest.Start(t, apptest.Options{Args: []string{"--exec.allow", filepath.Dir(node) + "," + filepath.Dir(realNode), "--media.root", media}})
	c := newSDK(t, e.Host, apptest.AdminSecretID, apptest.AdminSecretKey)

	// The webhook subscriber.
	var mu sync.Mutex
	var hits []map[string]any
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err == nil && ev.Type == "tianshu.watchlist.hit" {
			mu.Lock()
			hits = append(hits, ev.Data)
			mu.Unlock()
		}
	}))
	defer receiver.Close()
	c.mustCall("CreateSubscription", map[string]any{"Name": "alarms", "Channel": map[string]any{"Type": "webhook", "Webhook": map[string]any{"Url": receiver.URL}},
		"Filter": map[string]any{"Types": []string{"tianshu.watchlist.*"}}})

	pkgPath := filepath.Join(t.TempDir(), "face-attributes-node.tar.gz")
	cmd := exec.Command("bash", filepath.Join(faceAttributesDir, "pack.sh"), pkgPath)
	cmd.Env = append(os.Environ(), "PACK_EMBEDDING=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pack.sh: %v\n%s", err, out)
	}
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		t.Fatal(err)
	}
	tok := c.mustCall("CreateUploadToken", map[string]any{"MaxSize": len(pkg)})
	up := tusUploadType(t, tok["Endpoint"].(string), tok["Token"].(string), "face-attributes-node.tar.gz", "application/gzip", pkg)
	algID := c.mustCall("CreateAlgorithm", map[string]any{"Name": "face-embedding"})["AlgorithmId"].(string)
	def := map[string]any{"runtime": "process", "protocol": "tianshu-v1", "timeout": "60s",
		"contract": map[string]any{
			"inputs": []any{map[string]any{"name": "image", "type": "image", "required": true},
				map[string]any{"name": "embedding", "type": "bool"}},
			"outputs": []any{map[string]any{"name": "objects", "type": "objects"}}}}
	c.mustCall("CreateAlgorithmVersion", map[string]any{"AlgorithmId": algID, "Definition": def, "PackageUploadId": up, "Start": true})
	testenv.Eventually(t, 180*time.Second, "face-embedding instance ready", func() bool {
		is := c.mustCall("DescribeAlgorithmInstances", map[string]any{"AlgorithmId": algID})["InstanceSet"].([]any)
		return len(is) == 1 && is[0].(map[string]any)["Status"] == "ready"
	})

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

	doc := `{"name": "face-watchlist", "nodes": [
	  {"id": "detect", "kind": "algorithm", "config": {"algorithm": "alg-face-detect"}, "inputs": {"image": "$input.image", "minSize": 40}},
	  {"id": "faces", "kind": "foreach", "inputs": {"items": "$detect.faces", "image": "$input.image", "width": "$input.width"},
	   "config": {"concurrency": 1, "body": {
	     "nodes": [
	       {"id": "crop", "kind": "algorithm", "config": {"algorithm": "alg-image-ops"},
	        "inputs": {"image": "$input.image", "op": "crop", "box": "$item.box", "margin": 0.4, "quality": 90}},
	       {"id": "embed", "kind": "algorithm", "config": {"algorithm": "` + algID + `"}, "inputs": {"image": "$crop.image", "embedding": true}},
	       {"id": "save", "kind": "store", "config": {"type": "face"},
	        "inputs": {"Box": "$item.box", "Width": "$input.width", "Crop": "$crop.image", "Embedding": "$embed.objects[0].attributes.embedding"}},
	       {"id": "match", "kind": "match",
	        "inputs": {"embedding": "$embed.objects[0].attributes.embedding", "recordId": "$save.recordId", "crop": "$crop.image", "box": "$item.box"}}
	     ],
	     "edges": [{"from": "crop", "to": "embed"}, {"from": "embed", "to": "save"}, {"from": "save", "to": "match"}]}}}
	], "edges": [{"from": "detect", "to": "faces"}]}`
	flowID := c.mustCall("CreateFlow", map[string]any{"Document": doc})["FlowId"].(string)
	dev := c.mustCall("CreateDevice", map[string]any{"Name": "gate", "Driver": "replay", "Address": gate, "Fps": 1})["DeviceId"].(string)
	task := c.mustCall("CreateTask", map[string]any{"Name": "watch-gate", "FlowId": flowID, "Start": true,
		"Sources": []any{map[string]any{"Type": "device", "Id": dev}}})["TaskId"].(string)

	faceWidths := func() map[string]float64 {
		r := c.mustCall("SearchRecords", map[string]any{"TaskIds": []string{task}, "Types": []string{"face"}, "Limit": 100})
		out := map[string]float64{}
		for _, x := range r["RecordSet"].([]any) {
			m := x.(map[string]any)
			w, _ := m["Data"].(map[string]any)["Width"].(float64)
			out[m["RecordId"].(string)] = w
		}
		return out
	}
	testenv.EventuallyExplained(t, 240*time.Second, "a hit on the webhook, and face records of both people", func() bool {
		mu.Lock()
		n := len(hits)
		mu.Unlock()
		seen := map[float64]bool{}
		for _, w := range faceWidths() {
			seen[w] = true
		}
		return n > 0 && seen[512] && seen[1162]
	}, func() string {
		return toJSON(faceWidths()) + "\nstats " + toJSON(c.mustCall("DescribeTaskStats", map[string]any{"TaskId": task}))
	})
	widths := faceWidths()
	mu.Lock()
	got := append([]map[string]any(nil), hits...)
	mu.Unlock()
	for _, h := range got {
		t.Logf("hit: person %v, similarity %v, face width %v", h["PersonName"], h["Similarity"], widths[h["FaceRecordId"].(string)])
		if h["PersonId"] != personID || h["WatchlistId"] != listID || h["Similarity"].(float64) < 0.85 || h["RecordId"] == "" {
			t.Errorf("hit %v", h)
		}
		if widths[h["FaceRecordId"].(string)] != 512 {
			t.Errorf("a hit for a face that is not the astronaut's (width %v): %v", widths[h["FaceRecordId"].(string)], h)
		}
	}
	// The hits are records, with the face's crop, found by SearchRecords.
	r := c.mustCall("SearchRecords", map[string]any{"Types": []string{"watchlist_hit"}, "Conditions": []any{
		map[string]any{"Field": "PersonId", "Value": personID}, map[string]any{"Field": "Similarity", "Op": ">=", "Value": 0.85}}})
	if r["TotalCount"].(float64) < 1 {
		t.Fatalf("SearchRecords of the hits: %v", toJSON(r))
	}
	hit := r["RecordSet"].([]any)[0].(map[string]any)
	if len(hit["ObjectUrls"].([]any)) != 1 || hit["DeviceId"] != dev {
		t.Errorf("hit record without its crop or device: %v", toJSON(hit))
	}
	c.mustCall("StopTask", map[string]any{"TaskId": task})
}
