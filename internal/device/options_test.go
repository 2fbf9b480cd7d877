package device

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestDriversDescribe holds every registered driver to its spec: it
// describes itself, its Address, the defaults and enum values it declares
// are accepted by Validate, and a value of the wrong type for a declared
// option is refused naming that option. A new driver thus appears in the
// console's add form with a form that matches what the server accepts.
func TestDriversDescribe(t *testing.T) {
	base := map[string]Config{
		"replay":        {Address: "/media/demo"},
		"rtsp":          {Address: "rtsp://cam/stream"},
		"onvif":         {Address: "http://cam/onvif/device_service"},
		"http-snapshot": {Address: "http://cam/snap.jpg"},
		"mqtt":          {Address: "tcp://broker:1883", Options: map[string]any{"topic": "cams/#"}},
		"adapter":       {Address: "x", Options: map[string]any{"command": "/opt/adapter"}},
		"gb28181":       {Address: "34020000001320000001"},
	}
	specs := Specs()
	if len(specs) != len(Drivers()) {
		t.Fatalf("%d specs for %d drivers", len(specs), len(Drivers()))
	}
	for _, s := range specs {
		if _, ok := registry[s.Name].(describer); !ok || s.Description == "" {
			t.Errorf("driver %s does not describe itself", s.Name)
			continue
		}
		if len(s.Fields) == 0 || s.Fields[0].Name != "Address" || !s.Fields[0].Required {
			t.Errorf("driver %s: first field %+v, want a required Address", s.Name, s.Fields)
		}
		cfg, ok := base[s.Name]
		if !ok {
			t.Errorf("driver %s has no base configuration in this test", s.Name)
			continue
		}
		cfg.ID, cfg.Driver = "dev-x", s.Name
		with := func(k string, v any) Config {
			c := cfg
			c.Options = map[string]any{}
			for k, v := range cfg.Options {
				c.Options[k] = v
			}
			c.Options[k] = v
			return c
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("driver %s base: %v", s.Name, err)
		}
		for _, o := range s.Options {
			if o.Default != nil {
				if err := with(o.Name, o.Default).Validate(); err != nil {
					t.Errorf("driver %s: default of %s refused: %v", s.Name, o.Name, err)
				}
			}
			for _, e := range o.Enum {
				if err := with(o.Name, e).Validate(); err != nil {
					t.Errorf("driver %s: %s=%q refused: %v", s.Name, o.Name, e, err)
				}
			}
			var bad any = map[string]any{"not": "a " + o.Type}
			var fe *FieldError
			if err := with(o.Name, bad).Validate(); !errors.As(err, &fe) || fe.Field != "Options."+o.Name {
				t.Errorf("driver %s: %s=%v: %v, want an error naming Options.%s", s.Name, o.Name, bad, err, o.Name)
			}
		}
		if !s.OpenOptions {
			var fe *FieldError
			if err := with("no_such_option", 1).Validate(); !errors.As(err, &fe) || fe.Field != "Options.no_such_option" {
				t.Errorf("driver %s accepts an undeclared option: %v", s.Name, err)
			}
		}
		names := optionNames(s.Options)
		if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
			t.Errorf("driver %s declares an option twice: %v", s.Name, names)
		}
	}
}

// A device's own stall period is a duration between 1s and 1h, and a
// value out of range is refused naming the option.
func TestStallEventAfterOption(t *testing.T) {
	cfg := Config{ID: "dev-1", Driver: "replay", Address: "/srv/x"}
	if _, ok := cfg.StallEventAfter(); ok {
		t.Error("a device without the option has a stall period")
	}
	for v, want := range map[any]time.Duration{"3s": 3 * time.Second, 90.0: 90 * time.Second} {
		cfg.Options = map[string]any{OptStallEventAfter: v}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%v refused: %v", v, err)
		}
		if got, ok := cfg.StallEventAfter(); !ok || got != want {
			t.Errorf("%v: %v %v, want %v", v, got, ok, want)
		}
	}
	for _, v := range []any{"500ms", "2h", -1.0} {
		cfg.Options = map[string]any{OptStallEventAfter: v}
		var fe *FieldError
		if err := cfg.Validate(); !errors.As(err, &fe) || fe.Field != "Options."+OptStallEventAfter {
			t.Errorf("%v: %v, want an error naming Options.%s", v, err, OptStallEventAfter)
		}
	}
}
