package algorepo

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/tianshu-ai/tianshu/internal/algorithm"
	"github.com/tianshu-ai/tianshu/internal/api"
	"github.com/tianshu-ai/tianshu/internal/secrets"
	"github.com/tianshu-ai/tianshu/internal/secrets/reseal"
	"github.com/tianshu-ai/tianshu/internal/store"
)

// Limits on a version's secrets.
const (
	MaxSecrets        = 16
	MaxSecretValueLen = 4096
)

// secretName is a secret's name: usable as an environment variable and
// inside ${secret:NAME}.
var secretName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// reservedEnv are the variables the platform sets in a process's
// environment itself; a secret may not take their names.
var reservedEnv = map[string]bool{"PATH": true, "HOME": true, "TMPDIR": true, "PORT": true, "PACKAGE_DIR": true, "CUDA_VISIBLE_DEVICES": true}

// Secret is one secret of a version as CreateAlgorithmVersion takes it.
type Secret struct {
	// Name is how the version uses it: ${secret:NAME} in an http-mapped
	// request's header values, NAME in a process's environment.
	Name string `json:"Name"`
	// Value is write-only: responses show it masked.
	Value string `json:"Value"`
}

// UseSecrets gives the repository the box that seals versions' secrets;
// without one, versions with secrets are refused. Call it before serving.
func (s *Service) UseSecrets(box *secrets.Box) { s.box = box }

// SealedColumns lists the repository's columns sealed under the master
// key, for `tianshu secrets rotate`.
func SealedColumns() []reseal.Column {
	return []reseal.Column{{Table: "algorithm_secrets", Key: "id", Column: "secrets_enc"}, {Table: "image_registry_credentials", Key: "host", Column: "password_enc"}}
}

// SetSecrets checks a version's secrets and puts them on def: the values
// in def.Secrets (never stored with the definition), the names in
// def.SecretNames. Errors name the field (Secrets[i].Name, ...).
func SetSecrets(def *algorithm.Version, list []Secret) error {
	def.Secrets, def.SecretNames = nil, nil
	if len(list) == 0 {
		return nil
	}
	if len(list) > MaxSecrets {
		return api.InvalidValue("Secrets", "%d secrets; a version has at most %d", len(list), MaxSecrets)
	}
	def.Secrets = make(map[string]string, len(list))
	for i, sec := range list {
		field := fmt.Sprintf("Secrets[%d]", i)
		switch {
		case !secretName.MatchString(sec.Name):
			return api.InvalidValue(field+".Name", "%q is not a secret name (a letter or _, then letters, digits or _, at most 64)", sec.Name)
		case reservedEnv[sec.Name]:
			return api.InvalidValue(field+".Name", "%q is a variable the platform sets", sec.Name)
		case def.Secrets[sec.Name] != "":
			return api.InvalidValue(field+".Name", "%q is given twice", sec.Name)
		case sec.Value == "":
			return api.Missing(field + ".Value")
		case len(sec.Value) > MaxSecretValueLen:
			return api.InvalidValue(field+".Value", "%d bytes; at most %d", len(sec.Value), MaxSecretValueLen)
		}
		def.Secrets[sec.Name] = sec.Value
		def.SecretNames = append(def.SecretNames, sec.Name)
	}
	sort.Strings(def.SecretNames)
	return nil
}

// MaskedSecrets is how responses show a version's secrets: names only.
func MaskedSecrets(def algorithm.Version) []Secret {
	out := make([]Secret, 0, len(def.SecretNames))
	for _, n := range def.SecretNames {
		out = append(out, Secret{Name: n, Value: "***"})
	}
	return out
}

// insertSecrets seals def's secrets into tx; none, nothing.
func (s *Service) insertSecrets(ctx context.Context, tx *store.Tx, def algorithm.Version) error {
	if len(def.Secrets) == 0 {
		return nil
	}
	if s.box == nil {
		return api.Errorf(api.FailedOperation, "Secrets: this server keeps no secrets (no master key)")
	}
	b, _ := json.Marshal(def.Secrets)
	_, err := tx.Exec(ctx, "INSERT INTO algorithm_secrets (id, algorithm_id, version, secrets_enc) VALUES (?, ?, ?, ?)",
		def.AlgorithmID+"@"+def.Version, def.AlgorithmID, def.Version, s.box.Seal(string(b)))
	return err
}

// loadSecrets puts the sealed values of def's secrets on def, for the
// runtime; a version without secrets is left as it is.
func (s *Service) loadSecrets(ctx context.Context, def *algorithm.Version) error {
	if len(def.SecretNames) == 0 || def.Secrets != nil {
		return nil
	}
	if s.box == nil {
		return errors.New("algorepo: version has secrets and this server has no master key")
	}
	var sealed string
	err := s.db.QueryRow(ctx, "SELECT secrets_enc FROM algorithm_secrets WHERE id = ?", def.AlgorithmID+"@"+def.Version).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("algorepo: secrets of %s@%s are missing", def.AlgorithmID, def.Version)
	}
	if err != nil {
		return err
	}
	plain, err := s.box.Open(sealed)
	if err != nil {
		return fmt.Errorf("algorepo: secrets of %s@%s: %w", def.AlgorithmID, def.Version, err)
	}
	vals := map[string]string{}
	if err := json.Unmarshal([]byte(plain), &vals); err != nil {
		return fmt.Errorf("algorepo: secrets of %s@%s: %w", def.AlgorithmID, def.Version, err)
	}
	def.Secrets = vals
	return nil
}
