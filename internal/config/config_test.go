package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, file string, args ...string) (Config, error) {
	t.Helper()
	c := Default()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	if file != "" {
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := ApplyFile(p, fs); err != nil {
			return c, err
		}
	}
	return c, c.Validate()
}

func TestPrecedence(t *testing.T) {
	file := "priority: warning\noutput: [stdout, \"file:/tmp/a.json\"]\ncoalesce: 3s\nrules:\n  - /etc/a\n  - /etc/b\n"
	c, err := parse(t, file, "--priority", "error")
	if err != nil {
		t.Fatal(err)
	}
	if c.Priority != "error" {
		t.Errorf("flag must win over file: priority=%q", c.Priority)
	}
	if got := strings.Join(c.Outputs, ","); got != "stdout,file:/tmp/a.json" {
		t.Errorf("outputs from file: %q", got)
	}
	if c.Coalesce != 3*time.Second {
		t.Errorf("coalesce=%v", c.Coalesce)
	}
	if got := strings.Join(c.Rules, ","); got != "/etc/a,/etc/b" {
		t.Errorf("rules from file replace the default: %q", got)
	}
	if c.NATSListen != "127.0.0.1:4222" {
		t.Errorf("default kept: %q", c.NATSListen)
	}
}

func TestFileErrors(t *testing.T) {
	tests := []struct{ name, file, want string }{
		{"unknown key", "prority: error\n", "config.yaml:1:1: unknown setting \"prority\""},
		{"bad value", "coalesce: soon\n", "config.yaml:1:11: coalesce"},
		{"not a mapping", "- a\n", "must be a mapping"},
		{"nested", "output: {a: b}\n", "must be a scalar or a list"},
		{"bad output", "output: [smtp]\n", "unknown output \"smtp\""},
		{"ring", "ring-size: 1000\n", "not a power of two"},
		{"negative ring", "ring-size: -4096\n", "not a power of two"},
		{"env cap", "env-max: 9000\n", "env-max 9000 must be within 0..8191"},
		{"redact pattern", "redact-env: ['*TOKEN*', 'A=B']\n", "redact-env"},
		{"rules size", "rules-max-bytes: 0\n", "rules-max-bytes 0 must be positive"},
		{"kernel filter", "kernel-filter: maybe\n", "kernel-filter \"maybe\": want on or off"},
		{"container filter", "kernel-filter-container: no\n", "kernel-filter-container \"no\": want on or off"},
		{"compat syscalls", "compat-syscalls: yes\n", "compat-syscalls \"yes\": want on or off"},
		{"workers", "workers: -1\n", "workers -1 must be within 0..256"},
		{"syscall-hook", "syscall-hook: kprobe\n", `syscall-hook "kprobe": want auto, syscall or raw`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.file)
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestWorkers(t *testing.T) {
	c, err := parse(t, "workers: 3\n", "--workers", "2")
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 2 || c.WorkerCount() != 2 {
		t.Errorf("the flag must win: workers=%d count=%d", c.Workers, c.WorkerCount())
	}
	if c, _ = parse(t, "workers: 3\n"); c.WorkerCount() != 3 {
		t.Errorf("from the file: count=%d", c.WorkerCount())
	}
	if d := Default(); d.Workers != 0 || d.WorkerCount() != runtime.GOMAXPROCS(0) {
		t.Errorf("default: workers=%d count=%d, want 0 and GOMAXPROCS", d.Workers, d.WorkerCount())
	}
}

func TestDefaultRingSize(t *testing.T) {
	if d := Default(); d.RingSize != 0 || d.Validate() != nil {
		t.Errorf("default ring-size %d (want 0, per CPU), validation %v", d.RingSize, d.Validate())
	}
}

func TestAllErrorsAtOnce(t *testing.T) {
	_, err := parse(t, "a: 1\nb: 2\n")
	if err == nil || !strings.Contains(err.Error(), `"a"`) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("want both unknown keys reported, got %v", err)
	}
}
