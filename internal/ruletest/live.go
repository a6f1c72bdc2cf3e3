package ruletest

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"time"

	"github.com/tripline/tripline/internal/alert"
)

// Live runs the run: snippets of test cases against a running sensor whose
// alerts arrive on Alerts. In live mode a test passes when every expected
// rule fires within Wait after its snippet ran; other alerts (the host is
// never quiet) are ignored, and tests expecting no alert are skipped.
type Live struct {
	Alerts <-chan *alert.Alert
	Wait   time.Duration // default 5s
	// InContainer runs a snippet in a container; nil skips container tests.
	InContainer func(ctx context.Context, snippet string) ([]byte, error)
}

// RunCase runs one case.
func (l *Live) RunCase(ctx context.Context, file string, c Case) Result {
	res := Result{File: file, Name: c.Name, Line: c.Line}
	switch {
	case c.Run == "":
		res.Skipped = "no run: snippet"
		return res
	case len(c.Expect) == 0:
		res.Skipped = "live mode checks firing tests only"
		return res
	case c.Container && l.InContainer == nil:
		res.Skipped = "needs a container runtime (containerd)"
		return res
	}
	wait := l.Wait
	if wait <= 0 {
		wait = 5 * time.Second
	}
	l.drain()
	var out []byte
	var err error
	if c.Container {
		out, err = l.InContainer(ctx, c.Run)
	} else {
		out, err = exec.CommandContext(ctx, "/bin/sh", "-c", c.Run).CombinedOutput()
	}
	// A snippet may fail on purpose (e.g. a denied write): its syscalls still
	// happened, so err is reported only when expected rules are missing.
	seen := map[string]bool{}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for !containsAll(seen, c.Expect) {
		select {
		case a := <-l.Alerts:
			seen[a.Rule] = true
		case <-deadline.C:
			for _, r := range c.Expect {
				if !seen[r] {
					res.Missing = append(res.Missing, r)
				}
			}
			if err != nil {
				res.Err = fmt.Errorf("snippet failed: %v: %s", err, truncate(out, 200))
			}
			return res
		case <-ctx.Done():
			res.Err = ctx.Err()
			return res
		}
	}
	return res
}

func (l *Live) drain() {
	for {
		select {
		case <-l.Alerts:
		default:
			return
		}
	}
}

func containsAll(seen map[string]bool, want []string) bool {
	return !slices.ContainsFunc(want, func(r string) bool { return !seen[r] })
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
