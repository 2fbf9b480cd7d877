// Package chart checks the Helm chart in deploy/helm/tianshu: helm lint,
// helm template with the value sets in tianshu/ci, kubeconform with strict
// schemas made from the test API server's own OpenAPI document, a
// server-side dry run of every rendered object against a real
// kube-apiserver (internal/kube/kubetest), and the rendered command lines
// and environment through Tianshu's own configuration loader.
//
// helm and kubeconform come from scripts/install-helm.sh (built from the Go
// module proxy), the API server from scripts/install-kube.sh. Without them
// the tests skip, naming the script; with TIANSHU_REQUIRE_KUBE=1 they fail.
package chart

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tianshu-ai/tianshu/internal/app"
	"github.com/tianshu-ai/tianshu/internal/config"
	"github.com/tianshu-ai/tianshu/internal/kube/kubetest"
	"github.com/tianshu-ai/tianshu/internal/testenv"
)

const chartDir = "tianshu"

// tools finds helm, kubeconform and the ServiceMonitor CRD, or skips (fails
// under TIANSHU_REQUIRE_KUBE=1) naming the script that installs them.
func tools(t *testing.T) (helm, kubeconform, crd string) {
	t.Helper()
	dirs := []string{}
	if d := os.Getenv("TIANSHU_HELM_ASSETS"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, filepath.Join("..", "..", ".tools", "helm", "bin"))
	find := func(name string) string {
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
				return p
			}
		}
		p, _ := exec.LookPath(name)
		return p
	}
	helm, kubeconform = find("helm"), find("kubeconform")
	crd = filepath.Join("..", "..", ".tools", "helm", "crds", "servicemonitors.yaml")
	var missing []string
	if helm == "" {
		missing = append(missing, "helm")
	}
	if kubeconform == "" {
		missing = append(missing, "kubeconform")
	}
	if _, err := os.Stat(crd); err != nil {
		missing = append(missing, "the ServiceMonitor CRD (.tools/helm/crds)")
	}
	if len(missing) > 0 {
		reason := strings.Join(missing, ", ") + " not found; run scripts/install-helm.sh"
		if kubetest.Required() {
			t.Fatalf("required (TIANSHU_REQUIRE_KUBE=1): %s", reason)
		}
		t.Skip(reason)
	}
	return helm, kubeconform, crd
}

func run(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out, nil
}

// object is one rendered manifest.
type object map[string]any

func (o object) kind() string       { s, _ := o["kind"].(string); return s }
func (o object) apiVersion() string { s, _ := o["apiVersion"].(string); return s }
func (o object) name() string {
	m, _ := o["metadata"].(map[string]any)
	s, _ := m["name"].(string)
	return s
}
func (o object) String() string { return o.kind() + "/" + o.name() }

// get walks o along keys (map keys, or list indexes as ints).
func get(v any, path ...any) any {
	if o, ok := v.(object); ok {
		v = map[string]any(o)
	}
	for _, k := range path {
		switch k := k.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func parseManifests(t *testing.T, b []byte) []object {
	t.Helper()
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output is not YAML: %v", err)
		}
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

// valueSets are the files in tianshu/ci, each rendered and checked.
var valueSets = []string{"default", "demo", "scaled", "gpu"}

func TestChart(t *testing.T) {
	helm, kubeconform, crdFile := tools(t)
	// The controller manager creates each namespace's default
	// ServiceAccount, which the helm test pod runs as.
	env := kubetest.Start(t, kubetest.Options{ControllerManager: true})
	ctx := context.Background()

	// The Prometheus operator's CRD (from its module, by install-helm.sh),
	// so the ServiceMonitor is checked like any other object.
	createCRD(t, env, crdFile)
	schemas := writeSchemas(t, env)
	resources := discover(t, env)
	ns := env.CreateNamespace(t)
	// containerRuntime.namespace of ci/scaled-values.yaml.
	algoNS := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "tianshu-algorithms"}}
	if err := env.Do(ctx, "", http.MethodPost, "/api/v1/namespaces", algoNS, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the default ServiceAccount of "+ns, func() bool {
		return env.Do(ctx, "", http.MethodGet, "/api/v1/namespaces/"+ns+"/serviceaccounts/default", nil, nil) == nil
	})

	// -strict: the schemas forbid properties Kubernetes does not know; a
	// kind without a schema is an error too.
	loc := filepath.Join(schemas, "{{ .Group }}", "{{ .ResourceAPIVersion }}", "{{ .ResourceKind }}{{ .StrictSuffix }}.json")
	validate := func(t *testing.T, manifests []byte) ([]byte, error) {
		file := filepath.Join(t.TempDir(), "manifests.yaml")
		if err := os.WriteFile(file, manifests, 0o600); err != nil {
			t.Fatal(err)
		}
		return run(t, kubeconform, "-strict", "-summary", "-output", "text", "-schema-location", loc, file)
	}

	rendered := map[string][]object{}
	for _, set := range valueSets {
		t.Run(set, func(t *testing.T) {
			values := filepath.Join(chartDir, "ci", set+"-values.yaml")
			if _, err := run(t, helm, "lint", "--strict", chartDir, "-f", values); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, helm, "template", "tianshu", chartDir, "-n", ns, "-f", values)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := validate(t, out); err != nil {
				t.Fatalf("kubeconform: %v", err)
			} else {
				t.Logf("kubeconform: %s", bytes.TrimSpace(b))
			}
			objs := parseManifests(t, out)
			rendered[set] = objs
			for _, o := range objs {
				if err := dryRun(ctx, env, resources, ns, o); err != nil {
					t.Errorf("server-side dry run of %s: %v", o, err)
				}
			}
			checkProcesses(t, objs)
			checkSet(t, set, objs)
			// helm install --dry-run=server: lookup reads the cluster
			// (the generated master key and password are kept on an
			// upgrade through it) and the notes render.
			b, err := run(t, helm, "install", "tianshu", chartDir, "-n", ns, "--kubeconfig", env.Kubeconfig, "--dry-run=server", "-f", values)
			if err != nil {
				t.Fatal(err)
			}
			notes := b[bytes.Index(b, []byte("NOTES:")):]
			if !bytes.Contains(notes, []byte("helm test -n "+ns+" tianshu")) {
				t.Errorf("notes:\n%s", notes)
			}
			if testing.Verbose() && (set == "demo" || set == "scaled") {
				t.Logf("%s", notes)
			}
		})
	}

	// The generated master key and admin password are read back from the
	// release's Secret (lookup), not made again, when it exists.
	t.Run("keeps generated secrets", func(t *testing.T) {
		key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		// As an earlier install of the release left it (Helm's ownership
		// marks).
		meta := map[string]any{"name": "tianshu", "labels": map[string]any{"app.kubernetes.io/managed-by": "Helm"},
			"annotations": map[string]any{"meta.helm.sh/release-name": "tianshu", "meta.helm.sh/release-namespace": ns}}
		secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": meta,
			"stringData": map[string]any{"master-key": key, "admin-password": "kept-password"}}
		if err := env.Do(ctx, "", http.MethodPost, "/api/v1/namespaces/"+ns+"/secrets", secret, nil); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.Do(ctx, "", http.MethodDelete, "/api/v1/namespaces/"+ns+"/secrets/tianshu", nil, nil) }()
		b, err := run(t, helm, "install", "tianshu", chartDir, "-n", ns, "--kubeconfig", env.Kubeconfig, "--dry-run=server")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"master-key: " + base64.StdEncoding.EncodeToString([]byte(key)),
			"admin-password: " + base64.StdEncoding.EncodeToString([]byte("kept-password"))} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("the rendered Secret does not keep %q", want)
			}
		}
	})

	// The checks above would catch a mistake: a misspelt field and a
	// wrong type each fail both kubeconform and the dry run.
	t.Run("mistakes", func(t *testing.T) {
		var deploy object
		for _, o := range rendered["scaled"] {
			if o.kind() == "Deployment" {
				deploy = o
				break
			}
		}
		if deploy == nil {
			t.Skip("no scaled Deployment rendered")
		}
		for _, c := range []struct {
			name   string
			mutate func(o map[string]any)
			want   string
		}{
			{"unknown field", func(o map[string]any) {
				get(o, "spec", "template", "spec", "containers", 0).(map[string]any)["imagePullPolice"] = "Always"
			}, "imagePullPolice"},
			{"wrong type", func(o map[string]any) { get(o, "spec").(map[string]any)["replicas"] = "three" }, "replicas"},
			{"unknown kind field", func(o map[string]any) { o["spec"].(map[string]any)["replica"] = 2 }, "replica"},
		} {
			b, _ := json.Marshal(deploy)
			var o map[string]any
			_ = json.Unmarshal(b, &o)
			c.mutate(o)
			b, _ = json.Marshal(o)
			if out, err := validate(t, b); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: kubeconform answered %v %s", c.name, err, out)
			}
			if err := dryRun(ctx, env, resources, ns, o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: dry run answered %v", c.name, err)
			}
		}
	})
}

// TestChartRefusesBadValues: values that cannot work fail the rendering
// with a message naming the value: misspelt keys, types and ranges through
// values.schema.json, combinations through templates/validate.yaml.
func TestChartRefusesBadValues(t *testing.T) {
	helm, _, _ := tools(t)
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"db.url=postgres://db/t"}, "bus.url (or bus.existingSecret)"},
		{[]string{"db.url=postgres://db/t", "bus.url=nats://n:4222"}, "blob.url (or blob.existingSecret)"},
		{[]string{"db.url=sqlite:///x.db"}, "db.url: must start with postgres://, mysql:// or mariadb://"},
		{[]string{"db.url=postgres://db/t", "bus.url=nats://n:4222", "blob.url=s3://b", "demo=true"}, "demo: the face-structuring demo runs only in the embedded install"},
		{[]string{"db.url=postgres://db/t", "bus.url=nats://n:4222", "blob.url=s3://b", `workers.pools=[{"name":"GPU_pool"}]`}, `at '/workers/pools/0/name'`},
		{[]string{"db.url=postgres://db/t", "bus.url=nats://n:4222", "blob.url=s3://b", `workers.pools=[{"name":"gpu","kind":"StatefulSet"}]`}, `at '/workers/pools/0/kind': value must be one of 'Deployment', 'DaemonSet'`},
		// values.schema.json: a misspelt key is an error, not ignored.
		{[]string{"contol.replicas=3"}, "additional properties 'contol' not allowed"},
		{[]string{"control.replicas=0"}, "at '/control/replicas': minimum: got 0, want 1"},
		{[]string{"log.level=verbose"}, "at '/log/level'"},
		{[]string{"admin.secretId=AKIDx"}, "admin.secretKey: set with admin.secretId"},
	} {
		args := []string{"template", "t", chartDir}
		for _, s := range c.set {
			if strings.Contains(s, "=[") {
				args = append(args, "--set-json", s)
			} else {
				args = append(args, "--set", s)
			}
		}
		_, err := run(t, helm, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %v: got %v, want an error with %q", c.set, err, c.want)
		}
	}
}

// checkSet checks what each value set is for.
func checkSet(t *testing.T, set string, objs []object) {
	t.Helper()
	byName := map[string]object{}
	kinds := map[string]int{}
	for _, o := range objs {
		byName[o.String()] = o
		kinds[o.kind()]++
	}
	must := func(name string) object {
		o, ok := byName[name]
		if !ok {
			names := slices.Sorted(func(yield func(string) bool) {
				for n := range byName {
					if !yield(n) {
						return
					}
				}
			})
			t.Fatalf("%s: no %s among %v", set, name, names)
		}
		return o
	}
	args := func(o object) []string {
		var out []string
		for _, a := range get(o, "spec", "template", "spec", "containers", 0, "args").([]any) {
			out = append(out, a.(string))
		}
		return out
	}
	switch set {
	case "default", "demo":
		d := must("Deployment/tianshu")
		if r := get(d, "spec", "replicas"); r != 1 {
			t.Errorf("embedded replicas = %v, want 1", r)
		}
		must("PersistentVolumeClaim/tianshu-data")
		must("Service/tianshu-api")
		must("Secret/tianshu")
		if kinds["PodDisruptionBudget"] != 0 || kinds["ServiceMonitor"] != 0 || kinds["Role"] != 0 {
			t.Errorf("embedded install renders %v", kinds)
		}
		if got, want := slices.Contains(args(d), "--demo"), set == "demo"; got != want {
			t.Errorf("%s: --demo in %v", set, args(d))
		}
	case "scaled":
		c := must("Deployment/tianshu-control")
		if r := get(c, "spec", "replicas"); r != 3 {
			t.Errorf("control replicas = %v", r)
		}
		if !slices.Contains(args(c), "--target=api,bootstrap,scheduler") {
			t.Errorf("control args %v", args(c))
		}
		must("Deployment/tianshu-push")
		w := must("Deployment/tianshu-worker-cpu")
		if !slices.Contains(args(w), "--worker.labels=site=hq") {
			t.Errorf("worker args %v", args(w))
		}
		for _, n := range []string{"PodDisruptionBudget/tianshu-control", "PodDisruptionBudget/tianshu-push", "PodDisruptionBudget/tianshu-worker-cpu",
			"ServiceMonitor/tianshu", "Role/tianshu-runtime", "RoleBinding/tianshu-runtime", "Pod/tianshu-test-health"} {
			must(n)
		}
		if ns := get(must("Role/tianshu-runtime"), "metadata", "namespace"); ns != "tianshu-algorithms" {
			t.Errorf("Role in %v, want containerRuntime.namespace", ns)
		}
		for _, a := range []string{"--kube.in-cluster", "--kube.namespace=tianshu-algorithms"} {
			if !slices.Contains(args(w), a) || slices.Contains(args(c), a) {
				t.Errorf("%s: worker args %v, control args %v", a, args(w), args(c))
			}
		}
		if get(w, "spec", "template", "spec", "automountServiceAccountToken") != true {
			t.Error("the worker does not mount its service account token")
		}
		releaseNS := get(must("RoleBinding/tianshu-runtime"), "subjects", 0, "namespace").(string)
		cr := must("ClusterRole/tianshu-" + releaseNS + "-nodes")
		if v := get(cr, "rules", 0, "verbs"); fmt.Sprint(v) != "[get list]" {
			t.Errorf("node verbs %v", v)
		}
	case "gpu":
		for _, n := range []string{"DaemonSet/tianshu-worker-gpu-north", "DaemonSet/tianshu-worker-gpu-south"} {
			d := must(n)
			if g := get(d, "spec", "template", "spec", "containers", 0, "resources", "limits", "nvidia.com/gpu"); g != 1 {
				t.Errorf("%s: nvidia.com/gpu limit %v", n, g)
			}
			if get(d, "spec", "template", "spec", "tolerations", 0, "key") != "nvidia.com/gpu" {
				t.Errorf("%s: no GPU toleration", n)
			}
		}
		if a := args(byName["DaemonSet/tianshu-worker-gpu-north"]); !slices.Contains(a, "--worker.labels=gpu=a100,site=north") || !slices.Contains(a, "--worker.capacity=8") {
			t.Errorf("gpu-north args %v", a)
		}
		s := must("Deployment/tianshu-worker-shared")
		if g := get(s, "spec", "template", "spec", "containers", 0, "resources", "limits", "nvidia.com/gpumem"); g != 4096 {
			t.Errorf("shared gpumem %v", g)
		}
		if kinds["ServiceMonitor"] != 0 || byName["Deployment/tianshu-push"] != nil {
			t.Errorf("gpu set renders %v", kinds)
		}
		// The PDB of a DaemonSet pool is its own, by pool label.
		p := must("PodDisruptionBudget/tianshu-worker-shared")
		if get(p, "spec", "maxUnavailable") != 2 || get(p, "spec", "selector", "matchLabels", "tianshu.ai/worker-pool") != "shared" {
			t.Errorf("shared PDB %v", p["spec"])
		}
	}
}

// checkProcesses loads every Tianshu container's arguments and environment
// (Secret values resolved from the rendered Secret, or a stand-in for an
// existing one) with Tianshu's configuration loader, so a flag, a variable
// or a backend URL scheme the binary does not know fails here.
func checkProcesses(t *testing.T, objs []object) {
	t.Helper()
	secrets := renderedSecrets(t, objs)
	standIn := map[string]string{
		"TIANSHU_DB": "postgres://tianshu:pw@db:5432/tianshu", "TIANSHU_BUS": "nats://nats:4222",
		"TIANSHU_BLOB": "s3://bucket?region=us-east-1", "TIANSHU_CACHE": "redis://redis:6379",
	}
	modules := app.ModuleNames()
	n := 0
	for _, o := range objs {
		if o.kind() != "Deployment" && o.kind() != "DaemonSet" {
			continue
		}
		args, env := containerCommand(t, o, secrets, standIn)
		if len(args) == 0 || args[0] != "serve" {
			t.Errorf("%s: args %v do not start with serve", o, args)
			continue
		}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg, err := config.Load(fs, args[1:], func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: tianshu serve %v: %v", o, args[1:], err)
			continue
		}
		for _, target := range cfg.Targets {
			if !slices.Contains(modules, target) {
				t.Errorf("%s: target %q is not a module (%v)", o, target, modules)
			}
		}
		if cfg.HTTPAddr != "0.0.0.0:8080" || cfg.DataDir != "/var/lib/tianshu" {
			t.Errorf("%s: http_addr %s, data_dir %s", o, cfg.HTTPAddr, cfg.DataDir)
		}
		n++
	}
	if n == 0 {
		t.Error("no Tianshu process rendered")
	}
}

// renderedSecrets returns the data of the Secrets among objs, decoded.
func renderedSecrets(t *testing.T, objs []object) map[string]map[string]string {
	t.Helper()
	secrets := map[string]map[string]string{}
	for _, o := range objs {
		if o.kind() != "Secret" {
			continue
		}
		data := map[string]string{}
		for k, v := range get(o, "data").(map[string]any) {
			b, err := base64.StdEncoding.DecodeString(v.(string))
			if err != nil {
				t.Fatalf("%s: %s: %v", o, k, err)
			}
			data[k] = string(b)
		}
		secrets[o.name()] = data
	}
	return secrets
}

// containerCommand returns the arguments and environment of the first
// container of a workload: plain values, and Secret references resolved
// from secrets or, for a Secret not rendered (an existingSecret), from
// standIn by variable name.
func containerCommand(t *testing.T, o object, secrets map[string]map[string]string, standIn map[string]string) ([]string, map[string]string) {
	t.Helper()
	c := get(o, "spec", "template", "spec", "containers", 0)
	var args []string
	for _, a := range get(c, "args").([]any) {
		args = append(args, a.(string))
	}
	env := map[string]string{}
	for _, e := range get(c, "env").([]any) {
		name := get(e, "name").(string)
		if v, ok := get(e, "value").(string); ok {
			env[name] = v
			continue
		}
		ref, ok := get(e, "valueFrom", "secretKeyRef").(map[string]any)
		if !ok {
			continue
		}
		if s, ok := secrets[ref["name"].(string)]; ok {
			v, ok := s[ref["key"].(string)]
			if !ok {
				if ref["optional"] != true {
					t.Errorf("%s: %s: key %s not in Secret %s", o, name, ref["key"], ref["name"])
				}
				continue
			}
			env[name] = v
		} else if v, ok := standIn[name]; ok {
			env[name] = v
		}
	}
	return args, env
}

// resource is where the API serves one kind.
type resource struct {
	path       string // /api/v1 or /apis/GROUP/VERSION
	plural     string
	namespaced bool
}

// discover reads the API server's discovery documents: kind → resource.
func discover(t *testing.T, env *kubetest.Env) map[string]resource {
	t.Helper()
	ctx := context.Background()
	out := map[string]resource{}
	paths := []string{"/api/v1"}
	var groups struct {
		Groups []struct {
			Versions []struct {
				GroupVersion string `json:"groupVersion"`
			} `json:"versions"`
		} `json:"groups"`
	}
	if err := env.Do(ctx, "", http.MethodGet, "/apis", nil, &groups); err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		for _, v := range g.Versions {
			paths = append(paths, "/apis/"+v.GroupVersion)
		}
	}
	for _, p := range paths {
		var list struct {
			GroupVersion string `json:"groupVersion"`
			Resources    []struct {
				Name       string `json:"name"`
				Kind       string `json:"kind"`
				Namespaced bool   `json:"namespaced"`
			} `json:"resources"`
		}
		if err := env.Do(ctx, "", http.MethodGet, p, nil, &list); err != nil {
			t.Fatal(err)
		}
		for _, r := range list.Resources {
			if strings.Contains(r.Name, "/") {
				continue // subresources
			}
			out[list.GroupVersion+"/"+r.Kind] = resource{path: p, plural: r.Name, namespaced: r.Namespaced}
		}
	}
	return out
}

// dryRun creates o on the API server with dryRun=All and strict field
// validation: admission, defaulting and validation run, nothing is stored
// (what kubectl apply --dry-run=server does).
func dryRun(ctx context.Context, env *kubetest.Env, resources map[string]resource, ns string, o object) error {
	r, ok := resources[o.apiVersion()+"/"+o.kind()]
	if !ok {
		return fmt.Errorf("the API server serves no %s %s", o.apiVersion(), o.kind())
	}
	path := r.path
	if r.namespaced {
		objNS, _ := get(o, "metadata", "namespace").(string)
		if objNS == "" {
			objNS = ns
		}
		path += "/namespaces/" + objNS
	}
	path += "/" + r.plural + "?dryRun=All&fieldValidation=Strict"
	return env.Do(ctx, "", http.MethodPost, path, map[string]any(o), nil)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, what, ok)
}

// createCRD creates the CustomResourceDefinition in file and waits until
// it is served.
func createCRD(t *testing.T, env *kubetest.Env, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(b, &crd); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	ctx := context.Background()
	if err := env.Do(ctx, "", http.MethodPost, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd, nil); err != nil {
		t.Fatalf("create CRD %s: %v", file, err)
	}
	name := get(crd, "metadata", "name").(string)
	var conds []any
	testenv.EventuallyExplained(t, 30*time.Second, "CRD "+name+" established", func() bool {
		var got map[string]any
		if err := env.Do(ctx, "", http.MethodGet, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name, nil, &got); err != nil {
			t.Fatal(err)
		}
		conds, _ = get(got, "status", "conditions").([]any)
		for _, c := range conds {
			if get(c, "type") == "Established" && get(c, "status") == "True" {
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprint(conds) })
}

// writeSchemas turns the API server's OpenAPI v2 document into the JSON
// schemas kubeconform reads, one file per kind at
// GROUP/VERSION/KIND-strict.json (GROUP is the apiVersion's part before
// the slash, "v1" for the core group, as kubeconform names it). Each file
// holds the kind's definition and every definition it reaches; strict
// means no property the API does not define (additionalProperties: false
// on every object with properties), as kubeconform's published strict
// schemas do. int-or-string and quantities take numbers or strings, as the
// API server does.
func writeSchemas(t *testing.T, env *kubetest.Env) string {
	t.Helper()
	// The CRD's schema reaches /openapi/v2 shortly after it is established.
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	testenv.Eventually(t, 30*time.Second, "ServiceMonitor in /openapi/v2", func() bool {
		if err := env.Do(context.Background(), "", http.MethodGet, "/openapi/v2", nil, &doc); err != nil {
			t.Fatal(err)
		}
		_, ok := doc.Definitions["com.coreos.monitoring.v1.ServiceMonitor"]
		return ok
	})
	defs := map[string]any{}
	for name, d := range doc.Definitions {
		defs[name] = strictSchema(d)
	}
	// A quantity is written as a string ("500m") or a number (2).
	defs["io.k8s.apimachinery.pkg.api.resource.Quantity"] = map[string]any{
		"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}},
	}
	dir := t.TempDir()
	n := 0
	for name, d := range doc.Definitions {
		gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			group, _ := get(g, "group").(string)
			version, _ := get(g, "version").(string)
			kind, _ := get(g, "kind").(string)
			apiGroup := version // kubeconform's .Group of "v1" is "v1"
			if group != "" {
				apiGroup = group
			}
			schema := map[string]any{
				"$schema":     "http://json-schema.org/draft-04/schema#",
				"$ref":        "#/definitions/" + name,
				"definitions": reachable(defs, name),
			}
			b, err := json.Marshal(schema)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, apiGroup, version, strings.ToLower(kind)+"-strict.json")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	t.Logf("kubeconform schemas: %d kinds from /openapi/v2 in %s", n, dir)
	return dir
}

// strictSchema returns a copy of an OpenAPI v2 schema as kubeconform's
// strict JSON schema.
func strictSchema(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if strings.HasPrefix(k, "x-kubernetes-") && k != "x-kubernetes-preserve-unknown-fields" {
				continue
			}
			out[k] = strictSchema(x)
		}
		if f, _ := v["format"].(string); f == "int-or-string" || v["x-kubernetes-int-or-string"] == true {
			delete(out, "type")
			delete(out, "format")
			out["oneOf"] = []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}
		}
		if _, ok := v["properties"]; ok {
			if _, set := v["additionalProperties"]; !set && v["x-kubernetes-preserve-unknown-fields"] != true {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = strictSchema(x)
		}
		return out
	}
	return v
}

// reachable returns the definitions name refers to, transitively.
func reachable(defs map[string]any, name string) map[string]any {
	out := map[string]any{}
	var walk func(v any)
	visit := func(n string) {
		if _, done := out[n]; done {
			return
		}
		d, ok := defs[n]
		if !ok {
			return
		}
		out[n] = d
		walk(d)
	}
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				visit(strings.TrimPrefix(ref, "#/definitions/"))
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(v[k])
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	visit(name)
	return out
}

// TestDocsShowValues: docs/kubernetes.md shows the demo values as the file
// holds them (without its comments), so the walk-through installs what
// TestChart checks.
func TestDocsShowValues(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "kubernetes.md"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "ci", "demo-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	want := "```yaml\n" + strings.Join(lines, "\n") + "```\n"
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/kubernetes.md does not show ci/demo-values.yaml as\n%s", want)
	}
	for _, set := range valueSets[1:] {
		if !strings.Contains(string(doc), "deploy/helm/tianshu/ci/"+set+"-values.yaml") {
			t.Errorf("docs/kubernetes.md does not name ci/%s-values.yaml", set)
		}
	}
}
