package api

import (
	"reflect"
	"testing"
)

// benchTask is shaped like CreateTask's request: nested structs, a list of
// objects and a free-form map.
type benchTask struct {
	ProjectId   string `json:"ProjectId"`
	Name        string `json:"Name"`
	Description string `json:"Description"`
	FlowId      string `json:"FlowId"`
	FlowVersion int64  `json:"FlowVersion"`
	Sources     []struct {
		Type       string         `json:"Type"`
		Id         string         `json:"Id"`
		DropPolicy string         `json:"DropPolicy"`
		Options    map[string]any `json:"Options"`
	} `json:"Sources"`
	Parameters  map[string]any `json:"Parameters"`
	Constraints *struct {
		Labels map[string]string `json:"Labels"`
	} `json:"Constraints"`
	Start bool `json:"Start"`
}

var benchTaskBody = []byte(`{"ProjectId": "default", "Name": "gate-3 faces", "Description": "Faces at the north gate, day shift",
	"FlowId": "flow-0123456789abcdef", "FlowVersion": 3,
	"Sources": [{"Type": "device", "Id": "dev-0123456789abcdef", "DropPolicy": "latest", "Options": {"fps": 5}},
		{"Type": "device", "Id": "dev-fedcba9876543210", "Options": {"fps": 5, "region": [0, 0, 640, 480]}}],
	"Parameters": {"threshold": 0.6, "zone": "north", "classes": ["person", "car"], "limits": {"min": 1, "max": 20}},
	"Constraints": {"Labels": {"site": "gate", "gpu": "t4"}}, "Start": true}`)

// BenchmarkDecode reports the cost of the duplicate-key and NUL checks on a
// typical body: "plain" is the decode as it was (the baseline), "checked"
// the decode every action now runs, "check-only" the checks alone.
func BenchmarkDecode(b *testing.B) {
	run := func(name string, decode func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(benchTaskBody)))
			for b.Loop() {
				if err := decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("plain", func() error { var r benchTask; return decodeJSON(benchTaskBody, &r) })
	run("checked", func() error { var r benchTask; return decodeStrict(benchTaskBody, &r) })
	t := reflect.TypeFor[*benchTask]()
	run("check-only", func() error {
		if err := checkJSON(benchTaskBody, t); err != nil {
			return err
		}
		return nil
	})
}
