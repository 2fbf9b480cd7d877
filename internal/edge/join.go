package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tianshu-ai/tianshu/internal/secrets"
)

// JoinPath is the cloud's endpoint where an edge spends its join token.
const JoinPath = "/edge/join"

// maxJoinBody bounds a join request and its answer.
const maxJoinBody = 4 << 10

type joinRequest struct {
	Token string `json:"Token"`
}

type joinResponse struct {
	NodeId     string `json:"NodeId"`
	ProjectId  string `json:"ProjectId"`
	Credential string `json:"Credential"`
	LeafUrl    string `json:"LeafUrl"`
	Error      string `json:"Error,omitempty"`
}

// JoinHandler serves POST /edge/join: a join token in, the node's
// credential and the hub's address out. It needs no key or session: the
// token is the authentication, and it works once.
func JoinHandler(nodes *Nodes, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := func(code int, v joinResponse) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(v)
		}
		var req joinRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, maxJoinBody)).Decode(&req); err != nil || req.Token == "" {
			answer(http.StatusBadRequest, joinResponse{Error: "Token: required (a JSON body {\"Token\": \"tsedge1...\"})"})
			return
		}
		hub, err := nodes.Hub(r.Context())
		if err != nil {
			answer(http.StatusServiceUnavailable, joinResponse{Error: ErrNoHub.Error()})
			return
		}
		n, cred, err := nodes.Join(r.Context(), req.Token)
		if errors.Is(err, ErrBadToken) {
			log.Warn("edge join refused", "remote", r.RemoteAddr)
			answer(http.StatusForbidden, joinResponse{Error: ErrBadToken.Error()})
			return
		}
		if err != nil {
			log.Error("edge join failed", "err", err)
			answer(http.StatusInternalServerError, joinResponse{Error: "internal error"})
			return
		}
		log.Info("edge node joined", "node", n.ID, "project", n.ProjectID, "remote", r.RemoteAddr)
		answer(http.StatusOK, joinResponse{NodeId: n.ID, ProjectId: n.ProjectID, Credential: cred, LeafUrl: hub.LeafURL})
	})
}

// credential is what an edge keeps after joining, in <data dir>/edge/link.json
// (mode 0600), the credential sealed with the edge's master key.
type credential struct {
	NodeID      string `json:"NodeId"`
	ProjectID   string `json:"ProjectId"`
	LeafURL     string `json:"LeafUrl"`
	Fingerprint string `json:"Fingerprint"`
	Sealed      string `json:"Credential"`
	secret      string
}

func credentialFile(dir string) string { return filepath.Join(dir, "link.json") }

// loadOrJoin returns the stored credential, or spends token at cloud to
// get one and stores it.
func loadOrJoin(ctx context.Context, dir, cloud, token string, box *secrets.Box, client *http.Client) (credential, error) {
	var c credential
	b, err := os.ReadFile(credentialFile(dir))
	if err == nil {
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("edge: %s: %w", credentialFile(dir), err)
		}
		c.secret, err = box.Open(c.Sealed)
		if err != nil {
			return c, fmt.Errorf("edge: %s: credential: %w", credentialFile(dir), err)
		}
		return c, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return c, err
	}
	if token == "" {
		return c, errors.New("edge: not joined yet: give --join-token (TIANSHU_JOIN_TOKEN) from CreateEdgeNode")
	}
	t, err := ParseToken(token)
	if err != nil {
		return c, err
	}
	body, _ := json.Marshal(joinRequest{Token: token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cloud, "/")+JoinPath, bytes.NewReader(body))
	if err != nil {
		return c, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return c, fmt.Errorf("edge: join %s: %w", cloud, err)
	}
	defer resp.Body.Close()
	var jr joinResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJoinBody)).Decode(&jr); err != nil {
		return c, fmt.Errorf("edge: join %s: %s", cloud, resp.Status)
	}
	if resp.StatusCode != http.StatusOK || jr.Error != "" {
		return c, fmt.Errorf("edge: join %s: %s: %s", cloud, resp.Status, jr.Error)
	}
	if jr.NodeId != t.NodeID || jr.Credential == "" || !strings.HasPrefix(jr.LeafUrl, "tls://") {
		return c, fmt.Errorf("edge: join %s: answer is not for node %s", cloud, t.NodeID)
	}
	c = credential{NodeID: jr.NodeId, ProjectID: jr.ProjectId, LeafURL: jr.LeafUrl, Fingerprint: t.Fingerprint,
		Sealed: box.Seal(jr.Credential), secret: jr.Credential}
	b, _ = json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return c, err
	}
	tmp := credentialFile(dir) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return c, err
	}
	return c, os.Rename(tmp, credentialFile(dir))
}

// joinClient is the HTTP client of the join exchange.
func joinClient() *http.Client { return &http.Client{Timeout: 30 * time.Second} }

// CheckPath is the cloud's endpoint where an edge whose link is refused
// asks whether its credential still holds.
const CheckPath = "/edge/check"

type checkRequest struct {
	NodeId     string `json:"NodeId"`
	Credential string `json:"Credential"`
}

// CheckHandler serves POST /edge/check: a node id and credential in, 200
// while the credential holds, 403 once the node was deleted (or the
// credential is not its own). The caller learns nothing else.
func CheckHandler(nodes *Nodes, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := func(code int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(joinResponse{Error: msg})
		}
		var req checkRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, maxJoinBody)).Decode(&req); err != nil || req.NodeId == "" || req.Credential == "" {
			answer(http.StatusBadRequest, "NodeId and Credential: required")
			return
		}
		if !nodes.Authenticate(r.Context(), req.NodeId, req.Credential) {
			log.Info("edge credential check refused", "node", req.NodeId, "remote", r.RemoteAddr)
			answer(http.StatusForbidden, ErrBadToken.Error())
			return
		}
		answer(http.StatusOK, "")
	})
}

// errRevoked means the cloud refused the node's credential: the node was
// deleted.
var errRevoked = errors.New("edge: the cloud refused this node's credential (the node was deleted)")

// checkCredential asks the cloud whether c still holds: nil when it does,
// errRevoked when the cloud refuses it, another error when the cloud
// could not say.
func checkCredential(ctx context.Context, cloud string, c credential, client *http.Client) error {
	body, _ := json.Marshal(checkRequest{NodeId: c.NodeID, Credential: c.secret})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(cloud, "/")+CheckPath, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJoinBody))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusForbidden:
		return errRevoked
	}
	return fmt.Errorf("edge: credential check: %s", resp.Status)
}
