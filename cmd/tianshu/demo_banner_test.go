package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tianshu-ai/tianshu/internal/testenv"
)

// What `serve --demo` prints runs as printed: a newcomer pastes each
// command line of the banner into a shell (in a fresh directory, with no
// TIANSHU_ variable set) and each one works, the crop download the README
// promises included.
func TestDemoBannerCommandsRunAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed: the banner's curl lines cannot be run")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	out := &lockedWriter{w: &bytes.Buffer{}}
	logs := &lockedWriter{w: &bytes.Buffer{}}
	cmd := exec.Command(binary, "serve", "--demo", "--data-dir", dir, "--http-addr", addr)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = out, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	testenv.Eventually(t, 60*time.Second, "the demo banner", func() bool { return strings.Contains(out.String(), "curl -N") })

	var export string
	var commands []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "  ")
		if !ok || line == "" || line[0] == ' ' {
			continue
		}
		if strings.HasPrefix(line, "export ") {
			export = line
			continue
		}
		commands = append(commands, line)
	}
	if export == "" || len(commands) < 3 {
		t.Fatalf("banner without its commands:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "http://"+addr+"/ ") || !strings.Contains(out.String(), filepath.Join(dir, "initial-credentials.json")) {
		t.Errorf("the banner does not say where the console is and where its password is:\n%s", out.String())
	}
	work := t.TempDir() // the newcomer's shell, anywhere
	shell := func(line string) *exec.Cmd {
		c := exec.Command("bash", "-c", export+"\n"+line)
		c.Dir = work
		c.Env = cleanEnv()
		return c
	}
	crop := false
	for _, line := range commands {
		switch {
		case strings.HasPrefix(line, "curl -N "):
			// The live stream runs until stopped: it must answer with events.
			c := shell("exec " + line)
			stdout, _ := c.StdoutPipe()
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			got := make(chan bool, 1)
			go func() {
				s := bufio.NewScanner(stdout)
				for s.Scan() {
					if strings.HasPrefix(s.Text(), "data: ") {
						got <- true
						return
					}
				}
				got <- false
			}()
			select {
			case ok := <-got:
				if !ok {
					t.Errorf("%s: the stream ended without an event", line)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("%s: no event within 60 s", line)
			}
			_ = c.Process.Kill()
			_ = c.Wait()
		case strings.Contains(line, "face.jpg"):
			crop = true
			jpg := filepath.Join(work, "face.jpg")
			testenv.Eventually(t, 60*time.Second, "the crop download to write a JPEG", func() bool {
				_ = os.Remove(jpg)
				if err := shell(line).Run(); err != nil {
					return false
				}
				b, err := os.ReadFile(jpg)
				return err == nil && len(b) > 3 && b[0] == 0xFF && b[1] == 0xD8
			})
		default:
			if b, err := shell(line).CombinedOutput(); err != nil {
				t.Errorf("%s: %v\n%s", line, err, b)
			}
		}
	}
	if !crop {
		t.Errorf("the banner has no crop download (README promises one):\n%s", out.String())
	}

	// Ctrl-C ends the demo as an ordinary event, with a running task.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if exitErr := waitExit(t, cmd); exitErr != nil {
		t.Errorf("exit after SIGINT: %v", exitErr)
	}
	checkStopLoggedAtInfo(t, logs.String())
}
