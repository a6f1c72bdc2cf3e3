package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

// TestRulesRefuseNonRegularFiles runs the binary on a FIFO and on devices:
// each is refused at once with one line on stderr (a FIFO used to block
// forever, /dev/zero to be read until the process ran out of memory).
func TestRulesRefuseNonRegularFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "rules.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	small := filepath.Join(t.TempDir(), "small.yaml")
	if err := os.WriteFile(small, []byte("- list: a\n  items: [b]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"validate fifo", []string{"rules", "validate", fifo}, "a named pipe (FIFO), only regular files are read"},
		{"list zero", []string{"rules", "list", "/dev/zero"}, "/dev/zero: a character device"},
		{"validate urandom", []string{"rules", "validate", "/dev/urandom"}, "/dev/urandom: a character device"},
		{"test fifo", []string{"rules", "test", fifo}, "reading test file: rules: cannot read: " + fifo + ": a named pipe"},
		{"replay fifo", []string{"replay", "--rules", fifo, "testdata/recording.jsonl"}, "a named pipe (FIFO)"},
		{"too large", []string{"rules", "validate", "--rules-max-bytes", "10", small}, "small.yaml: more than 10 bytes (see --rules-max-bytes)"},
		{"zero max bytes", []string{"replay", "--rules-max-bytes", "0", "--rules", small, "testdata/recording.jsonl"}, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The deadline only guards against the old hang.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, sensorBin, tt.args...)
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("%v did not return", tt.args)
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if err == nil || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Fatalf("%v: err=%v, stderr %q; want one line containing %q", tt.args, err, msg, tt.want)
			}
		})
	}
}

// TestSIGTERMStopsRuleLoading sends SIGTERM to each command while it is
// loading a large rules file: each must exit within a second, reporting
// the stopped load (it used to load on and ignore the signal).
func TestSIGTERMStopsRuleLoading(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	var b bytes.Buffer
	for i := 0; b.Len() < 6<<20; i++ { // several seconds of loading
		fmt.Fprintf(&b, "- rule: rule %d\n  desc: d\n  condition: evt.type = execve and proc.name in (bash, p%d) and not proc.pname = x%d\n  output: started %%proc.name\n  priority: warning\n", i, i, i)
	}
	if err := os.WriteFile(big, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := filepath.Join(dir, "tests.yaml")
	if err := os.WriteFile(tests, []byte("rules: [big.yaml]\ntests:\n  - name: t\n    event: {evt.type: execve, proc.name: bash}\n    expect: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"rules", "validate", big},
		{"rules", "list", big},
		{"rules", "test", tests},
		{"replay", "--rules", big, "testdata/recording.jsonl"},
		{"run", "--rules", big, "--output", "stdout", "--metrics-addr", "", "--containerd-socket", "", "--data-dir", dir},
	} {
		t.Run(args[0]+" "+args[1], func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(sensorBin, args...)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer cmd.Process.Kill() //nolint:errcheck // already gone when the test passes
			// Signal once the process has spent CPU time loading, so that the
			// handler is installed and the load is under way.
			testenv.Eventually(t, 20*time.Second, func() bool { return cpuTicks(cmd.Process.Pid) >= 20 }, "%v never got busy loading", args)
			sent := time.Now()
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
			case <-time.After(time.Second):
				t.Fatalf("%v still running a second after SIGTERM", args)
			}
			t.Logf("%v exited %v after SIGTERM", args, time.Since(sent).Round(time.Millisecond))
			if !strings.Contains(stderr.String(), "load stopped: context canceled") {
				t.Errorf("%v: want the stopped load reported, stderr:\n%s", args, stderr.String())
			}
		})
	}
}

// cpuTicks returns the user CPU time of pid in clock ticks (0 once gone).
func cpuTicks(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime is field 14.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 12 {
		return 0
	}
	n, _ := strconv.Atoi(f[11])
	return n
}
