package algorepo

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"strings"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/imagebuild"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// OpenPackageFunc opens a stored install package by its blob key.
type OpenPackageFunc func(ctx context.Context, key string) (io.ReadCloser, error)

// UseImages lets container versions be created from an install package:
// b builds and pushes the image, open reads the stored package. Without
// it such versions are refused. Call it before serving.
func (s *Service) UseImages(b *imagebuild.Builder, open OpenPackageFunc) {
	s.images, s.openPackage = b, open
}

// RegistryLogin is the built-in registry's push login.
type RegistryLogin struct{ Host, Username, Password string }

// UseBuiltinRegistry tells the repository about the built-in registry,
// whose push login DescribeBuiltinRegistryLogin gives platform admins (to
// push base images there).
func (s *Service) UseBuiltinRegistry(login RegistryLogin) { s.builtinLogin = &login }

// ImageBuilder returns the builder given to UseImages (nil: none); its
// Credentials come from RegistryCredential.
func (s *Service) ImageBuilder() *imagebuild.Builder { return s.images }

// Limits on registry credentials.
const (
	maxRegistryUser     = 255
	maxRegistryPassword = 4096
)

// errNoImages answers image actions where building is not configured.
var errNoImages = api.Errorf(api.FailedOperation, "image building is not configured on this server (images.bases and images.registries, docs/kubernetes.md)")

// SetRegistryCredential keeps the username and password (or token) the
// builder logs in to an allowed registry with; the password is sealed and
// never returned.
func (s *Service) SetRegistryCredential(ctx context.Context, host, username, password string) error {
	if s.images == nil {
		return errNoImages
	}
	if !s.images.Allowed(host) {
		return api.InvalidValue("Host", "%q is not one of the registries the operator allows (images.registries)", host)
	}
	if s.box == nil {
		return api.Errorf(api.FailedOperation, "no secrets box: credentials cannot be sealed")
	}
	sealed := s.box.Seal(password)
	now := s.now().UnixMilli()
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM image_registry_credentials WHERE host = ?", host); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO image_registry_credentials (host, username, password_enc, updated_at) VALUES (?, ?, ?, ?)", host, username, sealed, now)
		return err
	})
	if err == nil {
		s.log.Info("image registry credential set", "registry", host, "username", username)
	}
	return err
}

// DeleteRegistryCredential forgets a registry's credentials; the builder
// then reaches it anonymously.
func (s *Service) DeleteRegistryCredential(ctx context.Context, host string) error {
	res, err := s.db.Exec(ctx, "DELETE FROM image_registry_credentials WHERE host = ?", host)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return api.NotFound("Host", host)
	}
	s.log.Info("image registry credential deleted", "registry", host)
	return nil
}

// RegistryCredential returns a registry's username and sealed password
// (both empty when none is kept): the builder's Credentials.
func (s *Service) RegistryCredential(ctx context.Context, host string) (username, passwordSealed string, err error) {
	err = s.db.QueryRow(ctx, "SELECT username, password_enc FROM image_registry_credentials WHERE host = ?", host).Scan(&username, &passwordSealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return username, passwordSealed, err
}

// registryUsers returns the usernames kept, by host.
func (s *Service) registryUsers(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.Query(ctx, "SELECT host, username FROM image_registry_credentials")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, u string
		if err := rows.Scan(&h, &u); err != nil {
			return nil, err
		}
		out[h] = u
	}
	return out, rows.Err()
}

// buildImage builds the image of a container version from its stored
// package (def.Package), or from its model file (def.Serving) and the
// serving runtime, and records it in def: Image by digest, and the base's
// digest. pkgField names the request field that gave the package.
func (s *Service) buildImage(ctx context.Context, def *algorithm.Version, pkgField string) error {
	if s.images == nil || s.openPackage == nil {
		return errNoImages
	}
	// The rest of the definition is checked before anything is pushed.
	check := *def
	check.Image = "(built from the package)"
	if err := validate(check); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tianshu-image-package-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	pkg := dir + string(os.PathSeparator) + "pkg"
	var runtimeDir string
	if def.Serving != nil {
		// A model file: its files and a manifest that starts the serving
		// runtime on them, over the runtime's own layer.
		if s.m == nil {
			return api.Errorf(api.FailedOperation, "Definition.serving: this node has no algorithm runtime to take the serving runtime from")
		}
		if err := os.Mkdir(pkg, 0o755); err != nil {
			return err
		}
		if runtimeDir, err = s.m.ServingImage(ctx, def, pkg, imagebuild.AppDir); err != nil {
			var fe *algorithm.FieldError
			if errors.As(err, &fe) {
				return api.InvalidValue("Definition."+fe.Field, "%s", fe.Msg)
			}
			return err
		}
	} else {
		rc, err := s.openPackage(ctx, def.Package)
		if err != nil {
			return err
		}
		err = algorithm.Unpack(rc, pkg, algorithm.PackageLimits{})
		rc.Close()
		if err != nil {
			return api.InvalidValue(pkgField, "%v", err)
		}
	}
	res, err := s.images.Build(ctx, imagebuild.Request{AlgorithmID: def.AlgorithmID, Version: def.Version, PackageDir: pkg,
		Base: def.ImageBuild.Base, Repository: def.ImageBuild.Repository, RuntimeDir: runtimeDir})
	var fe *algorithm.FieldError
	switch {
	case err == nil:
	case errors.Is(err, imagebuild.ErrImmutable):
		return api.Errorf(api.ResourceInUse, "Definition.imageBuild: %v", err)
	case errors.Is(err, algorithm.ErrNoManifest):
		return api.InvalidValue(pkgField, "%v", err)
	case errors.As(err, &fe) && strings.HasPrefix(fe.Field, "manifest."):
		return api.InvalidValue(pkgField, "%s: %s", fe.Field, fe.Msg)
	case errors.As(err, &fe):
		return api.InvalidValue("Definition."+fe.Field, "%s", fe.Msg)
	case ctx.Err() != nil:
		return err
	default:
		return api.Errorf(api.FailedOperation, "Definition.imageBuild: %v", err)
	}
	def.Image = res.Image
	def.ImageBuild.BaseDigest = res.BaseDigest
	return nil
}

// versionForBuild returns the version a build is tagged with: the one
// asked for, or the next number (CreateVersion refuses it should another
// call take it meanwhile).
func (s *Service) versionForBuild(ctx context.Context, algID, version string) (string, error) {
	if version != "" {
		return version, nil
	}
	err := s.db.InTx(ctx, func(tx *store.Tx) error {
		v, err := nextVersion(ctx, tx, algID)
		version = v
		return err
	})
	return version, err
}

// SetImageRegistryCredentialRequest is the request of SetImageRegistryCredential.
type SetImageRegistryCredentialRequest struct {
	// Host is an allowed registry's host[:port].
	Host     string `json:"Host" validate:"required,max=255"`
	Username string `json:"Username" validate:"max=255"`
	// Password (or token) is sealed at once and never returned.
	Password string `json:"Password" validate:"max=4096"`
}

// ImageRegistryHostRequest names a registry.
type ImageRegistryHostRequest struct {
	Host string `json:"Host" validate:"required,max=255"`
}

// ImageRegistryInfo is an allowed registry.
type ImageRegistryInfo struct {
	Host      string `json:"Host"`
	PlainHttp bool   `json:"PlainHttp"`
	// Username is the account kept for it ("" when anonymous);
	// HasCredential says whether credentials are kept.
	Username      string `json:"Username"`
	HasCredential bool   `json:"HasCredential"`
	// Builtin marks the built-in registry (its login is the platform's).
	Builtin bool `json:"Builtin"`
}

// DescribeImageBuildSettingsResponse is the response of DescribeImageBuildSettings.
type DescribeImageBuildSettingsResponse struct {
	Enabled     bool                `json:"Enabled"`
	Bases       []string            `json:"Bases"`
	RegistrySet []ImageRegistryInfo `json:"RegistrySet"`
}

// BuiltinRegistryLoginResponse is the response of DescribeBuiltinRegistryLogin.
type BuiltinRegistryLoginResponse struct {
	Host     string `json:"Host"`
	Username string `json:"Username"`
	Password string `json:"Password"`
}

// registerImageActions adds the image-building actions.
func registerImageActions(reg *api.Registry, s *Service) {
	admin := func(c *api.Caller) error {
		if !c.PlatformAdmin() {
			return api.Errorf(api.AuthFailureUnauthorizedOperation, "registry logins are for platform admins only")
		}
		return nil
	}
	api.Register(reg, api.Spec{Name: "SetImageRegistryCredential", Summary: "Keep the username and password (sealed, never returned) the image builder logs in to an allowed registry with. Platform admins only.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *SetImageRegistryCredentialRequest) (*Empty, error) {
			if err := admin(c); err != nil {
				return nil, err
			}
			if len(r.Username) > maxRegistryUser || len(r.Password) > maxRegistryPassword {
				return nil, api.InvalidValue("Password", "up to %d bytes", maxRegistryPassword)
			}
			if r.Username == "" && r.Password == "" {
				return nil, api.InvalidValue("Username", "give a username or a password (DeleteImageRegistryCredential forgets them)")
			}
			c.SetResource(r.Host)
			return &Empty{}, s.SetRegistryCredential(ctx, r.Host, r.Username, r.Password)
		})
	api.Register(reg, api.Spec{Name: "DeleteImageRegistryCredential", Summary: "Forget a registry's credentials; the image builder then reaches it anonymously. Platform admins only.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, r *ImageRegistryHostRequest) (*Empty, error) {
			if err := admin(c); err != nil {
				return nil, err
			}
			c.SetResource(r.Host)
			return &Empty{}, s.DeleteRegistryCredential(ctx, r.Host)
		})
	api.Register(reg, api.Spec{Name: "DescribeBuiltinRegistryLogin", Summary: "The push login of the built-in image registry, to push base images to it (e.g. crane push). Platform admins only.", Permission: algWrite, Audit: true},
		func(ctx context.Context, c *api.Caller, _ *Empty) (*BuiltinRegistryLoginResponse, error) {
			if err := admin(c); err != nil {
				return nil, err
			}
			if s.builtinLogin == nil {
				return nil, api.Errorf(api.FailedOperation, "no built-in registry on this server (images.builtin_registry.addr)")
			}
			l := s.builtinLogin
			return &BuiltinRegistryLoginResponse{Host: l.Host, Username: l.Username, Password: l.Password}, nil
		})
	api.Register(reg, api.Spec{Name: "DescribeImageBuildSettings", Summary: "The base images and registries the operator configured for building container images from install packages, and which registries have credentials.", Permission: algRead},
		func(ctx context.Context, c *api.Caller, _ *Empty) (*DescribeImageBuildSettingsResponse, error) {
			out := &DescribeImageBuildSettingsResponse{Bases: []string{}, RegistrySet: []ImageRegistryInfo{}}
			if s.images == nil {
				return out, nil
			}
			users, err := s.registryUsers(ctx)
			if err != nil {
				return nil, err
			}
			out.Enabled, out.Bases = true, s.images.Bases()
			for _, r := range s.images.Registries() {
				u, ok := users[r.Host]
				builtin := s.builtinLogin != nil && r.Host == s.builtinLogin.Host
				out.RegistrySet = append(out.RegistrySet, ImageRegistryInfo{Host: r.Host, PlainHttp: r.PlainHTTP, Username: u, HasCredential: ok || builtin, Builtin: builtin})
			}
			return out, nil
		})
}

// checkImageBuild checks a definition's imageBuild against the request.
func checkImageBuild(def *algorithm.Version, hasPackage bool) error {
	if def.ImageBuild == nil {
		return nil
	}
	switch {
	case def.Runtime != algorithm.RuntimeContainer:
		return api.InvalidValue("Definition.imageBuild", "only the container runtime builds an image")
	case def.Image != "":
		return api.InvalidValue("Definition.image", "give image or imageBuild, not both")
	case def.ImageBuild.BaseDigest != "":
		return api.InvalidValue("Definition.imageBuild.baseDigest", "is set by the platform")
	case def.Serving != nil && hasPackage:
		return api.InvalidValue("PackageUploadId", "a model-file version (Definition.serving) is built from its model file, not a package")
	case !hasPackage && def.Serving == nil:
		return api.InvalidValue("PackageUploadId", "imageBuild needs the install package (PackageUploadId or PackageBase64), or a model file (Definition.serving and ModelUploadId)")
	}
	return nil
}
