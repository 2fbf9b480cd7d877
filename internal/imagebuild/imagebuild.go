// Package imagebuild builds the OCI image of a container algorithm
// version from an install package, without a Docker daemon: the package
// becomes one layer on top of a base image the operator chose (a Debian
// slim, a Python, a Node.js or an ONNX runtime image, named in
// Config.Bases), its manifest's command, arguments and env become the
// image's entrypoint, cmd and env, and the image is pushed to an OCI
// registry the operator allowed, with credentials kept sealed until the
// moment they are sent.
//
// Builds are reproducible: the layer's files carry fixed owners and
// times and the image's creation time is the epoch, so the same package
// on the same base gives the same digest. The tag of a version
// (<algorithm>-<version>) is immutable: pushing a different image under
// an existing tag is refused, and the version records the digest.
package imagebuild

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/imagebuild/imageconfig"
	"github.com/tianshu-ai/tianshu/internal/netpolicy"
	"github.com/tianshu-ai/tianshu/internal/secrets"
)

// AppDir is where the package's files are in the image; the process runs
// there, as the process runtime runs it in the package's directory.
const AppDir = "/opt/tianshu/algorithm"

// Labels the built image carries besides the OCI ones.
const (
	LabelAlgorithm = "io.tianshu.algorithm"
	LabelVersion   = "io.tianshu.algorithm.version"
	LabelHealth    = "io.tianshu.health"
)

// Registry and Config are the operator's configuration (package
// imageconfig, which the root configuration nests).
type (
	Registry = imageconfig.Registry
	Config   = imageconfig.Config
)

// Credentials returns the username and the sealed password (or token) a
// registry is logged in to with; both empty: anonymously. The password is
// opened with Deps.Box only to authenticate a request.
type Credentials func(ctx context.Context, host string) (username, passwordSealed string, err error)

// Deps are what a builder uses besides its configuration; all optional.
type Deps struct {
	Box         *secrets.Box      // opens sealed passwords
	Credentials Credentials       // nil: every registry anonymously
	Policy      *netpolicy.Policy // outbound policy of every connection
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
	// Transports replace the network for some registries by host: the
	// built-in registry is reached in-process (builtinreg.Transport).
	Transports map[string]http.RoundTripper
}

// Builder builds and pushes images. It is safe for concurrent use.
type Builder struct {
	cfg      Config
	deps     Deps
	platform v1.Platform
	tr       http.RoundTripper
	log      *slog.Logger
	metrics  *metrics
}

// New returns a builder; its configuration errors name the field.
func New(cfg Config, deps Deps) (*Builder, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLayerBytes <= 0 {
		cfg.MaxLayerBytes = algorithm.DefaultMaxUnpackedBytes
	}
	if cfg.Platform == "" {
		cfg.Platform = "linux/amd64"
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if h := cfg.BuiltinHost(); h != "" {
		// The built-in registry is one of the allowed registries.
		cfg.Registries = append(slices.Clone(cfg.Registries), Registry{Host: h, PlainHTTP: true})
	}
	p, err := v1.ParsePlatform(cfg.Platform)
	if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(cfg.Platform, "/") > 2 {
		return nil, fmt.Errorf("imagebuild: platform: %q is not os/arch[/variant]", cfg.Platform)
	}
	seen := map[string]bool{}
	for i, r := range cfg.Registries {
		if _, err := name.NewRegistry(r.Host, name.StrictValidation); err != nil || r.Host == "" || strings.ContainsAny(r.Host, "/@") {
			return nil, fmt.Errorf("imagebuild: registries[%d].host: %q is not a registry host", i, r.Host)
		}
		if seen[r.Host] {
			return nil, fmt.Errorf("imagebuild: registries[%d].host: %q is listed twice", i, r.Host)
		}
		seen[r.Host] = true
	}
	b := &Builder{cfg: cfg, deps: deps, platform: *p, log: log}
	for _, n := range sortedKeys(cfg.Bases) {
		if _, _, err := b.parse(cfg.Bases[n]); err != nil {
			return nil, fmt.Errorf("imagebuild: bases.%s: %v", n, err)
		}
	}
	d := deps.Policy.Guard(&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second})
	// With a policy no proxy is used: the policy would see the proxy's
	// address instead of the registry's (or of the storage a registry
	// redirects blob downloads to, which the policy checks too).
	proxy := http.ProxyFromEnvironment
	if deps.Policy != nil {
		proxy = nil
	}
	b.tr = &http.Transport{
		Proxy:                 proxy,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	if b.metrics, err = newMetrics(deps.Registerer); err != nil {
		return nil, err
	}
	return b, nil
}

// Bases returns the names of the base images, sorted.
func (b *Builder) Bases() []string { return sortedKeys(b.cfg.Bases) }

// Registries returns the allowed registries.
func (b *Builder) Registries() []Registry { return slices.Clone(b.cfg.Registries) }

// Allowed reports whether host is an allowed registry.
func (b *Builder) Allowed(host string) bool {
	return slices.ContainsFunc(b.cfg.Registries, func(r Registry) bool { return r.Host == host })
}

// Request is one build: the unpacked package of a version, the base it
// goes on, and the repository the image is pushed to.
type Request struct {
	AlgorithmID, Version string
	// PackageDir is the unpacked install package.
	PackageDir string
	// Base names one of Config.Bases.
	Base string
	// Repository is where the image goes ("registry.example.com/algorithms/plates");
	// its registry must be allowed. The tag is <algorithm>-<version>.
	Repository string
	// RuntimeDir, when set, is laid at AppDir as a layer of its own under
	// the package's (a serving runtime that runs the package's model
	// files): the same directory gives the same layer, which registries
	// keep once for every version built on it.
	RuntimeDir string
}

// Result is a pushed image.
type Result struct {
	// Image is the content-addressed reference (repository@sha256:…),
	// what a container version runs.
	Image  string
	Digest string
	Tag    string // repository:tag, the human-readable name of the same image
	// BaseDigest is the digest of the base image used.
	BaseDigest string
	// Pushed is false when the registry held the same image already.
	Pushed bool
}

// BuildTimeout bounds one build, base pull and push included.
const BuildTimeout = 15 * time.Minute

// ErrImmutable is wrapped when a version's tag exists with another image.
var ErrImmutable = errors.New("imagebuild: a version's image is immutable")

var tagUnsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// Tag returns the tag of a version's image: <algorithm>-<version>, with
// characters a tag cannot hold replaced by '_'.
func Tag(algorithmID, version string) string {
	t := tagUnsafe.ReplaceAllString(algorithmID+"-"+version, "_")
	if len(t) > 128 {
		t = t[:128]
	}
	if t[0] == '.' || t[0] == '-' {
		t = "_" + t[1:]
	}
	return t
}

// Build builds the image of req and pushes it. Errors about the request
// are *algorithm.FieldError naming imageBuild.base, imageBuild.repository or the
// package's manifest field.
func (b *Builder) Build(ctx context.Context, req Request) (res *Result, err error) {
	ctx, cancel := context.WithTimeout(ctx, BuildTimeout)
	defer cancel()
	start := time.Now()
	defer func() {
		b.metrics.observe(err, time.Since(start))
		if err != nil {
			b.log.Warn("image build failed", "algorithm", req.AlgorithmID, "version", req.Version, "base", req.Base, "err", err)
		}
	}()
	bad := func(field, format string, args ...any) error {
		return &algorithm.FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	baseRef, ok := b.cfg.Bases[req.Base]
	if !ok {
		return nil, bad("imageBuild.base", "%q is not a base image of this installation (known: %s)", req.Base, strings.Join(sortedKeys(b.cfg.Bases), ", "))
	}
	base, baseOpts, err := b.reference(ctx, baseRef)
	if err != nil {
		return nil, bad("imageBuild.base", "%s (%q): %v", req.Base, baseRef, err)
	}
	repo, err := name.NewRepository(req.Repository, b.nameOpts(req.Repository)...)
	if err != nil {
		return nil, bad("imageBuild.repository", "%q: %v", req.Repository, err)
	}
	tagRef := repo.Tag(Tag(req.AlgorithmID, req.Version))
	pushRef, pushOpts, err := b.reference(ctx, tagRef.String())
	if err != nil {
		return nil, bad("imageBuild.repository", "%q: %v", req.Repository, err)
	}
	man, err := algorithm.ReadImageManifest(req.PackageDir)
	if err != nil {
		return nil, fmt.Errorf("package: %w", err)
	}

	baseImg, err := remote.Image(base, append(baseOpts, remote.WithPlatform(b.platform))...)
	if err != nil {
		return nil, bad("imageBuild.base", "%s (%s): %s", req.Base, baseRef, registryError(err, base.Context().RegistryStr()))
	}
	baseDigest, err := baseImg.Digest()
	if err != nil {
		return nil, bad("imageBuild.base", "%s (%s): %s", req.Base, baseRef, registryError(err, base.Context().RegistryStr()))
	}
	layerFile, err := os.CreateTemp("", "tianshu-image-layer-*.tar")
	if err != nil {
		return nil, err
	}
	defer os.Remove(layerFile.Name())
	defer layerFile.Close()
	var rtFile *os.File
	if req.RuntimeDir != "" {
		// The layers' tars stay in their files until the push has read them.
		if rtFile, err = os.CreateTemp("", "tianshu-image-runtime-*.tar"); err != nil {
			return nil, err
		}
		defer os.Remove(rtFile.Name())
		defer rtFile.Close()
	}
	img, err := b.compose(baseImg, baseRef, baseDigest, man, req, layerFile, rtFile)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	res = &Result{Image: repo.Digest(digest.String()).String(), Digest: digest.String(), Tag: tagRef.String(), BaseDigest: baseDigest.String()}

	// The tag is immutable: an existing one must hold this very image.
	if d, err := remote.Head(pushRef, pushOpts...); err == nil {
		if d.Digest != digest {
			return nil, fmt.Errorf("%w: %s holds %s, the build gives %s (a new package or base takes a new version)", ErrImmutable, tagRef, d.Digest, digest)
		}
		b.log.Info("image already in registry", "algorithm", req.AlgorithmID, "version", req.Version, "image", res.Image)
		return res, nil
	} else if !isNotFound(err) {
		return nil, bad("imageBuild.repository", "%s", registryError(err, repo.RegistryStr()))
	}
	if err := remote.Write(pushRef, img, pushOpts...); err != nil {
		return nil, bad("imageBuild.repository", "push %s: %s", tagRef, registryError(err, repo.RegistryStr()))
	}
	res.Pushed = true
	b.log.Info("image built", "algorithm", req.AlgorithmID, "version", req.Version, "image", res.Image, "base", req.Base, "baseDigest", res.BaseDigest)
	return res, nil
}

// compose puts the package layer and the manifest's process on the base.
func (b *Builder) compose(base v1.Image, baseRef string, baseDigest v1.Hash, man *algorithm.Manifest, req Request, layerFile, rtFile *os.File) (v1.Image, error) {
	mt, err := base.MediaType()
	if err != nil {
		return nil, err
	}
	layerType := types.DockerLayer
	if mt == types.OCIManifestSchema1 {
		layerType = types.OCILayer
	}
	if req.RuntimeDir != "" {
		rtLayer, err := fileLayer(rtFile, req.RuntimeDir, b.cfg.MaxLayerBytes, layerType)
		if err != nil {
			return nil, err
		}
		if base, err = mutate.Append(base, mutate.Addendum{
			Layer: rtLayer, MediaType: layerType,
			History: v1.History{CreatedBy: "tianshu: serving runtime " + man.Name + " " + man.Version},
		}); err != nil {
			return nil, err
		}
	}
	// The layer's tar stays in layerFile until the push has read it.
	layer, err := fileLayer(layerFile, req.PackageDir, b.cfg.MaxLayerBytes, layerType)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		MediaType: layerType,
		History:   v1.History{CreatedBy: "tianshu: install package " + man.Name + " " + man.Version, Comment: req.AlgorithmID + "@" + req.Version},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := *cf.Config.DeepCopy()
	port := strconv.Itoa(containerPort)
	vars := map[string]string{"PORT": port, man.PortEnv: port, "PACKAGE_DIR": AppDir}
	cmd := man.Command
	if man.InPackage(req.PackageDir) {
		cmd = path.Join(AppDir, path.Clean(filepath.ToSlash(cmd)))
	}
	cfg.Entrypoint = []string{cmd}
	cfg.Cmd = make([]string, len(man.Args))
	for i, a := range man.Args {
		cfg.Cmd[i] = os.Expand(a, func(k string) string {
			if v, ok := vars[k]; ok {
				return v
			}
			if v, ok := man.Env[k]; ok {
				return v
			}
			return "$" + k
		})
	}
	cfg.WorkingDir = AppDir
	env := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		}
		env[k] = v
	}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v)
	}
	for _, k := range sortedKeys(man.Env) {
		set(k, man.Env[k])
	}
	for _, k := range sortedKeys(vars) {
		set(k, vars[k])
	}
	// In a pod the Service reaches the process on the pod's address, not
	// on 127.0.0.1 where the process runtime has it listen: HOST tells a
	// package that honours it to listen on every interface.
	set("HOST", "0.0.0.0")
	cfg.Env = cfg.Env[:0]
	for _, k := range order {
		cfg.Env = append(cfg.Env, k+"="+env[k])
	}
	cfg.ExposedPorts = map[string]struct{}{port + "/tcp": {}}
	labels := map[string]string{}
	maps := []map[string]string{cfg.Labels, {
		"org.opencontainers.image.title":       man.Name,
		"org.opencontainers.image.version":     man.Version,
		"org.opencontainers.image.base.name":   baseRef,
		"org.opencontainers.image.base.digest": baseDigest.String(),
		LabelAlgorithm:                         req.AlgorithmID,
		LabelVersion:                           req.Version,
		LabelHealth:                            man.Health,
	}}
	for _, m := range maps {
		for k, v := range m {
			if v != "" {
				labels[k] = v
			}
		}
	}
	cfg.Labels = labels
	img, err = mutate.Config(img, cfg)
	if err != nil {
		return nil, err
	}
	// A fixed creation time keeps the digest a function of the content.
	return mutate.CreatedAt(img, v1.Time{Time: time.Unix(0, 0).UTC()})
}

// containerPort is the port the Kubernetes runtime gives a container
// version (internal/kube.ContainerPort; not imported, to keep the
// Kubernetes client out of this package).
const containerPort = 8080

// fileLayer writes dir's files as a layer into f and returns the layer,
// read from f.
func fileLayer(f *os.File, dir string, maxBytes int64, mt types.MediaType) (v1.Layer, error) {
	if err := writeLayer(f, dir, maxBytes); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(io.NewSectionReader(f, 0, 1<<62)), nil
	}, tarball.WithMediaType(mt))
}

// writeLayer writes the package's files as a tar stream under AppDir,
// in name order, owned by root, with the epoch as their time.
func writeLayer(w io.Writer, dir string, maxBytes int64) error {
	tw := tar.NewWriter(w)
	var total int64
	hdr := func(name string, typ byte, mode int64) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Mode: mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	}
	parts := strings.Split(strings.TrimPrefix(AppDir, "/"), "/")
	for i := range parts {
		if err := tw.WriteHeader(hdr(strings.Join(parts[:i+1], "/")+"/", tar.TypeDir, 0o755)); err != nil {
			return err
		}
	}
	root := strings.TrimPrefix(AppDir, "/")
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := path.Join(root, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(hdr(name+"/", tar.TypeDir, 0o755))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h := hdr(name, tar.TypeSymlink, 0o777)
			h.Linkname = target
			return tw.WriteHeader(h)
		case info.Mode().IsRegular():
			total += info.Size()
			if total > maxBytes {
				return fmt.Errorf("package: more than %d bytes of files, the limit of an image layer", maxBytes)
			}
			mode := int64(0o644)
			if info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			h := hdr(name, tar.TypeReg, mode)
			h.Size = info.Size()
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			n, err := io.Copy(tw, f)
			if err == nil && n != info.Size() {
				err = fmt.Errorf("package: %s changed while it was read", rel)
			}
			return err
		default:
			return fmt.Errorf("package: %s is not a regular file, directory or symbolic link", rel)
		}
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// parse parses ref and checks that its registry is allowed.
func (b *Builder) parse(ref string) (name.Reference, string, error) {
	r, err := name.ParseReference(ref, b.nameOpts(ref)...)
	if err != nil {
		return nil, "", err
	}
	host := r.Context().RegistryStr()
	if !b.Allowed(host) {
		return nil, "", fmt.Errorf("registry %s is not allowed (the operator's image registries: %s)", host, strings.Join(b.hosts(), ", "))
	}
	return r, host, nil
}

// reference parses ref, checks that its registry is allowed and returns
// the remote options (transport, credentials) for it.
func (b *Builder) reference(ctx context.Context, ref string) (name.Reference, []remote.Option, error) {
	r, host, err := b.parse(ref)
	if err != nil {
		return nil, nil, err
	}
	auth := authn.Anonymous
	if b.deps.Credentials != nil {
		user, sealed, err := b.deps.Credentials(ctx, host)
		if err != nil {
			return nil, nil, fmt.Errorf("registry %s: credentials: %w", host, err)
		}
		if user != "" || sealed != "" {
			pw := ""
			if sealed != "" {
				if b.deps.Box == nil {
					return nil, nil, fmt.Errorf("registry %s: credentials: no secrets box to open the password", host)
				}
				if pw, err = b.deps.Box.Open(sealed); err != nil {
					return nil, nil, fmt.Errorf("registry %s: credentials: %w", host, err)
				}
			}
			auth = &authn.Basic{Username: user, Password: pw}
		}
	}
	tr := b.tr
	if t, ok := b.deps.Transports[host]; ok {
		tr = t
	}
	return r, []remote.Option{remote.WithTransport(tr), remote.WithAuth(auth), remote.WithUserAgent("tianshu"), remote.WithContext(ctx)}, nil
}

// nameOpts allows plain HTTP for a reference in a registry so marked.
func (b *Builder) nameOpts(ref string) []name.Option {
	opts := []name.Option{name.StrictValidation}
	for _, r := range b.cfg.Registries {
		if r.PlainHTTP && (strings.HasPrefix(ref, r.Host+"/")) {
			opts = append(opts, name.Insecure)
		}
	}
	return opts
}

func (b *Builder) hosts() []string {
	out := make([]string, len(b.cfg.Registries))
	for i, r := range b.cfg.Registries {
		out[i] = r.Host
	}
	if len(out) == 0 {
		return []string{"none"}
	}
	return out
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// registryError says what a registry's answer means, without the
// library's wording of the request.
func registryError(err error, host string) string {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Sprintf("registry %s refused the credentials (401 Unauthorized): check the registry's username and password", host)
		case http.StatusForbidden:
			return fmt.Sprintf("registry %s denied access (403 Forbidden): the account may not read or write this repository", host)
		case http.StatusNotFound:
			return fmt.Sprintf("not found in registry %s (404)", host)
		}
		return fmt.Sprintf("registry %s answered %d: %v", host, te.StatusCode, te)
	}
	if errors.Is(err, netpolicy.ErrRefused) {
		return fmt.Sprintf("registry %s: %v (outbound policy)", host, err)
	}
	return fmt.Sprintf("registry %s: %v", host, err)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type metrics struct {
	builds   *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(r prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tianshu_image_builds_total",
			Help: "Image builds by result (ok, failed).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tianshu_image_build_duration_seconds",
			Help:    "Time to build and push an algorithm image, pulls of the base included.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10),
		}),
	}
	if r != nil {
		for _, c := range []prometheus.Collector{m.builds, m.duration} {
			if err := r.Register(c); err != nil {
				return nil, fmt.Errorf("imagebuild: metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) observe(err error, d time.Duration) {
	res := "ok"
	if err != nil {
		res = "failed"
	}
	m.builds.WithLabelValues(res).Inc()
	m.duration.Observe(d.Seconds())
}
