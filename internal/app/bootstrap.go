package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/iam"
	"github.com/tianshu-ai/tianshu/internal/ids"
)

// bootstrapMarker is set in settings once the first admin exists.
const bootstrapMarker = "bootstrap.done"

// CredentialsFile is where generated first credentials are written, under
// the data dir, once, with mode 0600. They never go to logs.
const CredentialsFile = "initial-credentials.json"

// InitialCredentials is the content of CredentialsFile.
type InitialCredentials struct {
	Endpoint  string `json:"Endpoint"`
	User      string `json:"User"`
	Password  string `json:"Password,omitempty"`
	AppId     string `json:"AppId"`
	SecretId  string `json:"SecretId"`
	SecretKey string `json:"SecretKey,omitempty"`
	Note      string `json:"Note"`
}

// initBootstrap creates, on an empty store, user admin and an admin app with
// one key pair: from TIANSHU_ADMIN_PASSWORD, TIANSHU_ADMIN_SECRET_ID and
// TIANSHU_ADMIN_SECRET_KEY when set, otherwise generated and written to
// <data-dir>/initial-credentials.json. Each step tolerates a previous,
// interrupted run, so a crash midway is completed on the next start.
func (p *Platform) initBootstrap(ctx context.Context) (func(context.Context) error, error) {
	var done string
	err := p.DB.QueryRow(ctx, "SELECT value FROM settings WHERE name = ?", bootstrapMarker).Scan(&done)
	if err == nil {
		return nil, nil
	}
	password, genPassword := p.getenv("TIANSHU_ADMIN_PASSWORD"), false
	if password == "" {
		password, genPassword = ids.Random(20, ids.Alnum), true
	}
	secretID, secretKey := p.getenv("TIANSHU_ADMIN_SECRET_ID"), p.getenv("TIANSHU_ADMIN_SECRET_KEY")
	if (secretID == "") != (secretKey == "") {
		return nil, errors.New("bootstrap: set both TIANSHU_ADMIN_SECRET_ID and TIANSHU_ADMIN_SECRET_KEY, or neither")
	}
	genKey := secretID == ""
	if _, err := p.Users.Create(ctx, "admin", password, api.RoleAdmin); err != nil {
		if !errors.Is(err, iam.ErrUserExists) {
			return nil, err
		}
		genPassword, password = false, "" // an interrupted run made it; its password stands
	}
	apps, _, err := p.Apps.ListApps(ctx, "default", nil, []string{"admin"}, []string{api.RoleAdmin}, 0, 1)
	if err != nil {
		return nil, err
	}
	var appID string
	if len(apps) > 0 {
		appID = apps[0].ID
	} else {
		a, err := p.Apps.CreateApp(ctx, "default", "admin", "Created at bootstrap for the first administrator.", api.RoleAdmin)
		if err != nil {
			return nil, err
		}
		appID = a.ID
	}
	if len(apps) == 0 || apps[0].ActiveKeys == 0 {
		if secretID, secretKey, err = p.Apps.CreateKey(ctx, appID, secretID, secretKey); err != nil {
			return nil, err
		}
	}
	if genPassword || genKey {
		c := InitialCredentials{Endpoint: p.BaseURL(), User: "admin", AppId: appID, SecretId: secretID,
			Note: "Generated once at first start. Store these elsewhere and delete this file."}
		if genPassword {
			c.Password = password
		}
		if genKey {
			c.SecretKey = secretKey
		}
		if err := writeCredentials(filepath.Join(p.cfg.DataDir, CredentialsFile), c); err != nil {
			return nil, err
		}
	}
	if _, err := p.DB.Exec(ctx, "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)",
		bootstrapMarker, p.now().UTC().Format(time.RFC3339), p.now().UnixMilli()); err != nil && !p.DB.IsUniqueViolation(err) {
		return nil, err
	}
	p.log.Info("bootstrap complete", "user", "admin", "app", appID, "secret_id", secretID,
		"credentials_file", filepath.Join(p.cfg.DataDir, CredentialsFile), "generated", genPassword || genKey)
	return nil, nil
}

func writeCredentials(path string, c InitialCredentials) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("bootstrap: write %s: %w", path, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
