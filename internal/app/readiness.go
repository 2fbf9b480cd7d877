package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tianshu-ai/tianshu/internal/store"
)

// readinessTTL is how long /readyz answers from its last run of the
// checks, so that a storm of probes costs the store one write a second.
const readinessTTL = time.Second

// checkTimeout bounds each readiness check.
const checkTimeout = 2 * time.Second

// readinessCheck is one named check of /readyz; run returns a detail for
// a passing check ("" for none) or the reason it fails.
type readinessCheck struct {
	name string
	run  func(ctx context.Context) (detail string, err error)
}

// readiness caches the result of the last run of the checks.
type readiness struct {
	mu    sync.Mutex
	at    time.Time
	ok    bool
	lines []string
}

// readinessChecks are the checks of this process, in the order /readyz
// lists them: what the process's modules depend on and can lose while
// running.
func (p *Platform) readinessChecks() []readinessCheck {
	checks := []readinessCheck{{"modules", func(context.Context) (string, error) {
		if bad := p.states.notRunning(); bad != "" {
			return "", errors.New(strings.ReplaceAll(bad, "\n", "; "))
		}
		return "", nil
	}}}
	if p.DB != nil {
		checks = append(checks,
			readinessCheck{"store", func(ctx context.Context) (string, error) { return "", p.DB.PingContext(ctx) }},
			readinessCheck{"store_write", func(ctx context.Context) (string, error) { return "", p.DB.ProbeWrite(ctx) }})
	}
	if p.Bus != nil {
		checks = append(checks, readinessCheck{"bus", func(ctx context.Context) (string, error) { return "", p.Bus.Ping(ctx) }})
	}
	if floor := p.cfg.Store.MinFreeBytes; floor > 0 {
		dirs := []string{p.cfg.DataDir}
		if p.DB != nil {
			if d := p.DB.LocalDir(); d != "" && !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
		checks = append(checks, readinessCheck{"disk", func(context.Context) (string, error) { return diskCheck(dirs, floor) }})
	}
	return checks
}

// diskCheck checks that each directory's file system has floor bytes free.
func diskCheck(dirs []string, floor int64) (string, error) {
	var ok, low []string
	for _, d := range dirs {
		free, err := store.FreeBytes(d)
		if err != nil {
			return "", fmt.Errorf("free space of %s: %w", d, err)
		}
		s := fmt.Sprintf("%s free on %s", bytesText(free), d)
		if free < uint64(floor) {
			low = append(low, s)
		} else {
			ok = append(ok, s)
		}
	}
	if len(low) > 0 {
		return "", fmt.Errorf("%s, below the floor of %s (store.min_free_bytes)", strings.Join(low, ", "), bytesText(uint64(floor)))
	}
	return fmt.Sprintf("%s, floor %s", strings.Join(ok, ", "), bytesText(uint64(floor))), nil
}

// bytesText writes n in binary units with one decimal.
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, exp := float64(n)/unit, 0
	for v >= unit && exp < 4 {
		v /= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTP"[exp])
}

// check runs the checks, at most once per readinessTTL, and returns
// whether all pass and one line per check.
func (p *Platform) checkReadiness(ctx context.Context) (bool, []string) {
	rd := &p.readiness
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if !rd.at.IsZero() && time.Since(rd.at) < readinessTTL {
		return rd.ok, rd.lines
	}
	checks := p.readinessChecks()
	lines := make([]string, len(checks))
	failed := make([]bool, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, checkTimeout)
			defer cancel()
			detail, err := c.run(cctx)
			switch {
			case err != nil:
				failed[i] = true
				lines[i] = c.name + ": failed: " + err.Error()
			case detail != "":
				lines[i] = c.name + ": ok (" + detail + ")"
			default:
				lines[i] = c.name + ": ok"
			}
		}()
	}
	wg.Wait()
	ok := !slices.Contains(failed, true)
	if ok != rd.ok || rd.at.IsZero() {
		if ok {
			p.log.Info("readiness checks pass")
		} else {
			p.log.Warn("readiness checks fail", "checks", strings.Join(lines, "; "))
		}
	}
	rd.at, rd.ok, rd.lines = time.Now(), ok, lines
	return ok, lines
}

// readyz answers 200 when every check passes, otherwise 503; the body
// names every check with its result, one per line.
func (p *Platform) readyz(w http.ResponseWriter, r *http.Request) {
	if !p.ready.Load() {
		http.Error(w, "starting or stopping\n"+p.states.notRunning()+"\n", http.StatusServiceUnavailable)
		return
	}
	// A probe that hangs up does not fail the checks the next ones share.
	ok, lines := p.checkReadiness(context.WithoutCancel(r.Context()))
	body := strings.Join(lines, "\n") + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n" + body))
		return
	}
	_, _ = w.Write([]byte("ready\n" + body))
}
