package imageconfig_test

import (
	"strings"
	"testing"

	"github.com/tianshu-ai/tianshu/internal/imagebuild/imageconfig"
)

func TestValidate(t *testing.T) {
	reg := []imageconfig.Registry{{Host: "registry.example.com"}}
	for _, c := range []struct {
		cfg     imageconfig.Config
		want    string // "" = valid
		enabled bool
	}{
		{imageconfig.Config{}, "", false},
		{imageconfig.Config{Registries: reg, Bases: map[string]string{"python": "registry.example.com/base/python:3.12"}}, "", true},
		{imageconfig.Config{Builtin: imageconfig.Builtin{Addr: "0.0.0.0:5000", Host: "tianshu-registry:5000"}, Bases: map[string]string{"node": "tianshu-registry:5000/base/node:22"}}, "", true},
		{imageconfig.Config{Registries: reg, Bases: map[string]string{"node": "docker.io/library/node:22"}}, "images.bases.node: registry docker.io is not in images.registries", false},
		{imageconfig.Config{Registries: reg, Bases: map[string]string{"Node": "registry.example.com/n:1"}}, "images.bases: \"Node\" is not a base name", false},
		{imageconfig.Config{Registries: reg, Bases: map[string]string{"node": "node"}}, "images.bases.node: \"node\" is not a reference with its registry", false},
		{imageconfig.Config{Registries: []imageconfig.Registry{{Host: "https://r.example"}}}, "images.registries[0].host", false},
		{imageconfig.Config{Registries: append(reg, reg...)}, "listed twice", false},
		{imageconfig.Config{Builtin: imageconfig.Builtin{Addr: ":5000"}}, "images.builtin_registry.host: required", false},
		{imageconfig.Config{Builtin: imageconfig.Builtin{Addr: "5000"}}, "images.builtin_registry.addr", false},
		{imageconfig.Config{Registries: reg, Builtin: imageconfig.Builtin{Addr: "0.0.0.0:5000", Host: "registry.example.com"}}, "also in images.registries", false},
		{imageconfig.Config{Platform: "linux"}, "images.platform", false},
		{imageconfig.Config{MaxLayerBytes: -1}, "images.max_layer_bytes", false},
	} {
		err := c.cfg.Validate()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
		if c.want == "" && c.cfg.Enabled() != c.enabled {
			t.Errorf("%+v: Enabled %v", c.cfg, !c.enabled)
		}
	}
}
