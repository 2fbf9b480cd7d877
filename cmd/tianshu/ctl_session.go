package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/tianshu-ai/tianshu/internal/api"
)

// cliSession is what `ctl login` keeps for later calls: the session
// cookie's value and the CSRF token, in a file only its owner can read.
type cliSession struct {
	Endpoint   string `json:"Endpoint"`
	UserName   string `json:"UserName"`
	Session    string `json:"Session"`
	CsrfToken  string `json:"CsrfToken"`
	ExpireTime string `json:"ExpireTime"`
}

// sessionFile is TIANSHU_SESSION_FILE, or session.json in the user's
// config directory (~/.config/tianshu on Linux).
func sessionFile(getenv func(string) string) (string, error) {
	if f := getenv("TIANSHU_SESSION_FILE"); f != "" {
		return f, nil
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			d, err := os.UserConfigDir()
			if err != nil {
				return "", fmt.Errorf("no place for the session file: set TIANSHU_SESSION_FILE (%v)", err)
			}
			return filepath.Join(d, "tianshu", "session.json"), nil
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "tianshu", "session.json"), nil
}

func loadSession(getenv func(string) string) (*cliSession, error) {
	path, err := sessionFile(getenv)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s cliSession
	if err := json.Unmarshal(b, &s); err != nil || s.Session == "" {
		return nil, fmt.Errorf("%s: not a session file", path)
	}
	return &s, nil
}

func saveSession(getenv func(string) string, s cliSession) (string, error) {
	path, err := sessionFile(getenv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}

// authorize adds the session cookie and the CSRF header to a request.
func (s *cliSession) authorize(req *http.Request, _ []byte) {
	req.AddCookie(&http.Cookie{Name: api.SessionCookie, Value: s.Session})
	req.Header.Set(api.CSRFHeader, s.CsrfToken)
}

// readPassword takes TIANSHU_PASSWORD, or prompts on the terminal without
// echo, or reads one line from a pipe.
func readPassword(getenv func(string) string, stderr io.Writer) (string, error) {
	if p := getenv("TIANSHU_PASSWORD"); p != "" {
		return p, nil
	}
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ctlLogin runs `tianshu ctl login --user NAME`: it logs in and keeps the
// session for later ctl calls made without a key.
func ctlLogin(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("tianshu ctl login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoint := fs.String("endpoint", envOr(getenv, "TIANSHU_ENDPOINT", "http://127.0.0.1:8080"), "platform URL (env TIANSHU_ENDPOINT)")
	user := fs.String("user", getenv("TIANSHU_USER"), "user name (env TIANSHU_USER); the password comes from TIANSHU_PASSWORD or a prompt")
	timeout := fs.Duration("timeout", 30*time.Second, "request timeout")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *user == "" {
		fmt.Fprintln(stderr, "tianshu ctl login: --user is required")
		return 2
	}
	password, err := readPassword(getenv, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl login: password: %v\n", err)
		return 2
	}
	body, _ := json.Marshal(map[string]string{"UserName": *user, "Password": password})
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	raw, cookies, err := post(ctx, http.DefaultClient, *endpoint, "Login", body, nil)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl login: %v\n", err)
		return 2
	}
	resp, code := decodeResponse(raw, stderr)
	if code != 0 {
		return code
	}
	s := cliSession{Endpoint: *endpoint, UserName: *user}
	_ = json.Unmarshal(resp["CsrfToken"], &s.CsrfToken)
	_ = json.Unmarshal(resp["ExpireTime"], &s.ExpireTime)
	for _, c := range cookies {
		if c.Name == api.SessionCookie {
			s.Session = c.Value
		}
	}
	if s.Session == "" || s.CsrfToken == "" {
		fmt.Fprintln(stderr, "tianshu ctl login: the server set no session")
		return 2
	}
	path, err := saveSession(getenv, s)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl login: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "logged in to %s as %s until %s; session kept in %s\n", s.Endpoint, s.UserName, s.ExpireTime, path)
	return 0
}

// ctlLogout ends the kept session on the server and deletes its file.
func ctlLogout(stdout, stderr io.Writer, getenv func(string) string) int {
	s, err := loadSession(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "tianshu ctl logout: no session kept: %v\n", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := post(ctx, http.DefaultClient, s.Endpoint, "Logout", []byte("{}"), s.authorize); err != nil {
		fmt.Fprintf(stderr, "tianshu ctl logout: the server was not told (%v); deleting the session file anyway\n", err)
	}
	path, _ := sessionFile(getenv)
	if err := os.Remove(path); err != nil {
		fmt.Fprintf(stderr, "tianshu ctl logout: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "logged out of %s\n", s.Endpoint)
	return 0
}
