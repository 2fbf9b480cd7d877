// Package compose checks deploy/compose/compose.yaml without a container
// engine (none runs on the build machines): the file is parsed as Compose
// reads it (YAML anchors and merge keys, ${VAR:-default} and ${VAR:?error}
// interpolated from env.example), and every Tianshu service's command and
// environment go through Tianshu's own configuration loader. Whether the
// images start and the services reach each other is not checked here.
package compose

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
)

// readEnv reads a dotenv file: NAME=value lines, # comments.
func readEnv(t *testing.T, file string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not NAME=value", file, line)
		}
		env[k] = v
	}
	return env
}

var varRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}`)

// interpolate replaces ${VAR}, ${VAR:-default} and ${VAR:?error} as
// Compose does; a missing required variable is an error.
func interpolate(s string, env map[string]string) (string, error) {
	var err error
	out := varRE.ReplaceAllStringFunc(s, func(m string) string {
		p := varRE.FindStringSubmatch(m)
		v, ok := env[p[1]]
		switch {
		case ok && v != "":
			return v
		case p[2] == ":-":
			return p[3]
		case p[2] == ":?":
			err = fmt.Errorf("%s: %s", p[1], p[3])
		}
		return v
	})
	return out, err
}

type service struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]any    `yaml:"depends_on"`
}

func load(t *testing.T, env map[string]string) map[string]service {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := interpolate(string(b), env)
	if err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var f struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(s), &f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return f.Services
}

func TestComposeProcesses(t *testing.T) {
	services := load(t, readEnv(t, "env.example"))
	modules := app.ModuleNames()
	var images []string
	var targets []string
	for name, s := range services {
		for dep := range s.DependsOn {
			if _, ok := services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
		}
		if len(s.Command) == 0 || s.Command[0] != "serve" {
			continue
		}
		images = append(images, s.Image)
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg, err := config.Load(fs, s.Command[1:], func(k string) string { return s.Environment[k] })
		if err != nil {
			t.Errorf("%s: tianshu %v: %v", name, s.Command, err)
			continue
		}
		for _, target := range cfg.Targets {
			if !slices.Contains(modules, target) {
				t.Errorf("%s: target %q is not a module", name, target)
			}
			targets = append(targets, target)
		}
		// Every backend is shared: nothing embedded in one process.
		for field, url := range map[string]string{"db": cfg.DB, "bus": cfg.Bus, "blob": cfg.Blob, "cache": cfg.Cache} {
			host := url[strings.Index(url, "://")+3:]
			if i := strings.LastIndex(host, "@"); i >= 0 {
				host = host[i+1:]
			}
			host, _, _ = strings.Cut(host, ":")
			if field == "blob" {
				host = "minio"
				if !strings.Contains(url, "endpoint=http://minio:9000") {
					t.Errorf("%s: blob %s is not the minio service", name, url)
				}
			}
			if _, ok := services[host]; !ok {
				t.Errorf("%s: %s %s names no service", name, field, url)
			}
		}
		if s.Environment["TIANSHU_MASTER_KEY"] == "" {
			t.Errorf("%s: no master key", name)
		}
	}
	slices.Sort(targets)
	if want := []string{"api", "bootstrap", "push", "scheduler", "worker"}; !slices.Equal(targets, want) {
		t.Errorf("targets %v, want %v", targets, want)
	}
	slices.Sort(images)
	if images = slices.Compact(images); len(images) != 1 {
		t.Errorf("images %v, want one", images)
	}
}

// TestComposeRequiresSecrets: without .env, Compose refuses to start and
// names the variable.
func TestComposeRequiresSecrets(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = interpolate(string(b), map[string]string{})
	if err == nil || !strings.Contains(err.Error(), "set ") {
		t.Fatalf("got %v, want a missing variable named", err)
	}
}
