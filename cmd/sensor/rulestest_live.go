package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/ruletest"
)

type liveOptions struct {
	enabled  bool
	wait     time.Duration
	socket   string
	maxBytes int64 // --rules-max-bytes (offline runs use it too)
}

func (liveOptions) waitDefault() time.Duration { return 5 * time.Second }

// runLiveTests attaches the sensor once per test file (with that file's
// rules) and runs each test's snippet on the host or in a busybox container.
func runLiveTests(cmd *cobra.Command, files []string, opt liveOptions) ([]ruletest.Result, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("rules test --live attaches BPF programs and needs root")
	}
	log := newLogger(cmd, "warn")
	ctx := cmd.Context()
	var inContainer func(context.Context, string) ([]byte, error)
	if _, err := os.Stat(opt.socket); err == nil {
		if ctr, err := exec.LookPath("ctr"); err == nil {
			rootfs, cleanup, err := busyboxRootfs()
			if err != nil {
				return nil, err
			}
			defer cleanup()
			var n atomic.Int64
			inContainer = func(ctx context.Context, snippet string) ([]byte, error) {
				id := fmt.Sprintf("tripline-live-%d-%d", os.Getpid(), n.Add(1))
				return exec.CommandContext(ctx, ctr, "--address", opt.socket, "run", "--rm", "--rootfs", rootfs, id, "/bin/sh", "-c", snippet).CombinedOutput()
			}
		}
	}
	var all []ruletest.Result
	for _, path := range files {
		f, err := ruletest.ParseFile(path)
		if err != nil {
			return nil, err
		}
		res, err := runLiveFile(ctx, f, opt, inContainer, log)
		if err != nil {
			return nil, err
		}
		all = append(all, res...)
	}
	return all, nil
}

func runLiveFile(ctx context.Context, f *ruletest.File, opt liveOptions,
	inContainer func(context.Context, string) ([]byte, error), log interface {
		Warn(string, ...any)
	}) ([]ruletest.Result, error) {
	rs, _, err := rules.LoadFilesContext(ctx, f.Rules, rules.Options{MaxFileBytes: opt.maxBytes})
	if err != nil {
		return nil, fmt.Errorf("%s: loading rules: %w", f.Path, err)
	}
	cfg := config.Default()
	cfg.Coalesce = 0 // every alert counts
	cfg.ContainerdSocket = ""
	if inContainer != nil {
		cfg.ContainerdSocket = opt.socket
	}
	alerts := make(chan *alert.Alert, 4096)
	publish := func(a *alert.Alert) {
		select {
		case alerts <- a:
		default: // the test reader drains between cases; never block the pipeline
		}
	}
	slogger := newLoggerTo(os.Stderr, "warn")
	g := newGroup(slogger)
	eng, err := newEngine(engineConfig{cfg: cfg, rules: rs, publish: publish}, slogger, g.start)
	if err != nil {
		g.stop()
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- eng.pipe.Run(context.Background()) }()
	<-eng.pipe.Ready()
	if eng.enr != nil {
		select {
		case <-eng.enr.Ready():
		case <-time.After(5 * time.Second):
			log.Warn("containerd not ready; container tests may miss metadata")
		}
	}
	live := &ruletest.Live{Alerts: alerts, Wait: opt.wait, InContainer: inContainer}
	var out []ruletest.Result
	for _, c := range f.Tests {
		out = append(out, live.RunCase(ctx, f.Path, c))
	}
	eng.stopCapture()
	<-done
	eng.close()
	g.stop()
	return out, nil
}

// busyboxRootfs builds a minimal container root from busybox-static.
func busyboxRootfs() (string, func(), error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", nil, fmt.Errorf("live container tests need busybox-static: %w", err)
	}
	dir, err := os.MkdirTemp("", "tripline-rootfs-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "root", "var/log"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
		cleanup()
		return "", nil, err
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		cleanup()
		return "", nil, err
	}
	for _, app := range strings.Fields(string(list)) {
		if app != "busybox" && !strings.Contains(app, "/") {
			_ = os.Symlink("busybox", filepath.Join(dir, "bin", app))
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
		"etc/shadow": "root:*:19000:0:99999:7:::\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			cleanup()
			return "", nil, err
		}
	}
	return dir, cleanup, nil
}
