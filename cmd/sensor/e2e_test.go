package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tripline/tripline/internal/capture"
	"github.com/tripline/tripline/internal/testenv"
)

// sensorBin is built once by TestMain; the end-to-end tests run the real binary.
var sensorBin string

func TestMain(m *testing.M) {
	if spec := os.Getenv("TRIPLINE_OPENLOOP"); spec != "" {
		openLoop(spec) // a load generator child of the benchmarks
		return
	}
	dir, err := os.MkdirTemp("", "tripline-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sensorBin = filepath.Join(dir, "sensor")
	out, err := exec.Command("go", "build", "-o", sensorBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building sensor: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// daemon is a running `sensor run`.
type daemon struct {
	cmd    *exec.Cmd
	stdout *bufio.Scanner
	log    *strings.Builder
	exited chan error
}

// startSensor runs the binary with args and waits for its "ready" line.
func startSensor(t testing.TB, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(sensorBin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stdout: bufio.NewScanner(stdout), log: &strings.Builder{}, exited: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			line := sc.Text()
			d.log.WriteString(line + "\n")
			if !once && strings.Contains(line, "msg=ready") {
				once = true
				close(ready)
			}
		}
		d.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	select {
	case <-ready:
	case err := <-d.exited:
		t.Fatalf("sensor exited before ready: %v\n%s", err, d.log)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("sensor not ready after 60s:\n%s", d.log)
	}
	return d
}

// subscribeAlerts subscribes to every alert subject of the sensor's embedded
// NATS server on port; the subscription is live when it returns.
func subscribeAlerts(t testing.TB, port int) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("tripline.alerts.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// startTrace runs `sensor trace` with args and returns once its probes are
// attached, with its standard output; it is killed when the test ends.
func startTrace(t *testing.T, args ...string) (*exec.Cmd, io.Reader) {
	t.Helper()
	cmd := exec.Command(sensorBin, append([]string{"trace"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	sc := bufio.NewScanner(stderr)
	var log strings.Builder
	for !strings.Contains(log.String(), "ready") {
		if !sc.Scan() {
			t.Fatalf("sensor trace exited before ready:\n%s", log.String())
		}
		log.WriteString(sc.Text() + "\n")
	}
	go io.Copy(io.Discard, stderr)
	return cmd, stdout
}

func (d *daemon) stop(t testing.TB) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("sensor exit after SIGTERM: %v\n%s", err, d.log)
		}
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("sensor did not stop within 20s of SIGTERM:\n%s", d.log)
	}
}

const e2eRule = `- rule: E2E open of test file
  desc: end-to-end test rule
  condition: evt.type in (open, openat, openat2) and fd.name = "%s"
  output: "Test file opened (file=%%fd.name proc=%%proc.name pid=%%proc.pid uid=%%user.uid)"
  priority: WARNING
  tags: [test, T0000]
`

func TestRunDeliversToEmbeddedNATS(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "trigger.txt")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(fmt.Sprintf(e2eRule, target)), 0o644); err != nil {
		t.Fatal(err)
	}
	natsPort, metricsPort := freePort(t), freePort(t)
	d := startSensor(t, "run", "--rules", rulesFile, "--data-dir", filepath.Join(dir, "data"),
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort), "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", metricsPort),
		"--containerd-socket", "", "--output", "nats,stdout", "--workers", "2", "--compat-syscalls", "on")
	if !strings.Contains(d.log.String(), "workers=2") {
		t.Errorf("the ready line does not name the workers:\n%s", d.log)
	}

	sub := subscribeAlerts(t, natsPort)
	if b, err := os.ReadFile(target); err != nil || string(b) != "x" {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(15 * time.Second)
	if err != nil {
		t.Fatalf("no alert on NATS: %v\n%s", err, d.log)
	}
	if msg.Subject != "tripline.alerts.warning.e2e_open_of_test_file" {
		t.Errorf("subject %q", msg.Subject)
	}
	var a struct {
		Time         string         `json:"time"`
		Rule         string         `json:"rule"`
		Priority     string         `json:"priority"`
		Source       string         `json:"source"`
		Output       string         `json:"output"`
		OutputFields map[string]any `json:"output_fields"`
		Hostname     string         `json:"hostname"`
		Tags         []string       `json:"tags"`
		UUID         string         `json:"uuid"`
	}
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		t.Fatalf("alert JSON: %v: %s", err, msg.Data)
	}
	if a.Rule != "E2E open of test file" || a.Priority != "Warning" || a.Source != "syscall" || a.UUID == "" || a.Hostname == "" {
		t.Errorf("alert: %s", msg.Data)
	}
	if a.OutputFields["fd.name"] != target || a.OutputFields["proc.pid"] != float64(os.Getpid()) {
		t.Errorf("output_fields: %v (want fd.name=%s proc.pid=%d)", a.OutputFields, target, os.Getpid())
	}
	if _, err := time.Parse(time.RFC3339Nano, a.Time); err != nil || !strings.Contains(a.Output, "Warning Test file opened (file="+target) {
		t.Errorf("time %q output %q", a.Time, a.Output)
	}
	if len(a.Tags) != 2 || a.Tags[0] != "test" {
		t.Errorf("tags %v", a.Tags)
	}
	// The stdout output carries the same alert.
	if !d.stdout.Scan() || !strings.Contains(d.stdout.Text(), a.UUID) {
		t.Errorf("stdout output: %q", d.stdout.Text())
	}

	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
	// The 32-bit syscall hook is on wherever the kernel has ia32 emulation.
	compat := "tripline_kernel_compat_syscalls 0"
	if capture.CompatKernel() {
		compat = "tripline_kernel_compat_syscalls 1"
	}
	for _, want := range []string{`tripline_rule_matches_total{priority="Warning",rule="E2E open of test file"} 1`, "tripline_events_total{type=\"openat\"}", "tripline_kernel_events_lost_total 0", "tripline_events_no_identity_total 0", `tripline_kernel_syscall_hook{hook="syscall"} 1`, compat, `tripline_pipeline_worker_events_total{worker="1"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", metricsPort)); !strings.Contains(got, "ok") {
		t.Errorf("healthz: %q", got)
	}

	// sensor tail replays it from JetStream.
	tail := exec.Command(sensorBin, "tail", "--all", "--json", "--nats-url", fmt.Sprintf("nats://127.0.0.1:%d", natsPort))
	out, _ := tail.StdoutPipe()
	if err := tail.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	gotLine := make(chan string, 1)
	go func() {
		if lines.Scan() {
			gotLine <- lines.Text()
		}
		close(gotLine)
	}()
	select {
	case l := <-gotLine:
		if !strings.Contains(l, a.UUID) {
			t.Errorf("tail --all printed %q, want the alert %s", l, a.UUID)
		}
	case <-time.After(15 * time.Second):
		t.Error("tail --all printed nothing in 15s")
	}
	tail.Process.Kill()
	tail.Wait()

	d.stop(t)
	// The stop summary reports the counters that counted.
	sum := stopSummary(t, d.log.String())
	if sum["events_seen"] == 0 || sum["events_processed"] == 0 || sum["alerts"] == 0 {
		t.Errorf("stop summary %v: want events_seen, events_processed and alerts > 0 (an open was captured and alerted)", sum)
	}
	// The stop drains the ring: every event the kernel passed was processed,
	// lost (ring full) or malformed, none left behind.
	if got := sum["events_processed"] + sum["events_lost"] + sum["events_malformed"]; got != sum["events_seen"] {
		t.Errorf("stop summary %v: processed+lost+malformed = %d, want events_seen", sum, got)
	}
}

// stopSummary returns the numeric fields of the sensor's "stopped" log line.
func stopSummary(t testing.TB, log string) map[string]uint64 {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "msg=stopped") {
			continue
		}
		out := map[string]uint64{}
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if n, err := strconv.ParseUint(v, 10, 64); ok && err == nil {
				out[k] = n
			}
		}
		return out
	}
	t.Fatalf("no stop summary in the sensor log:\n%s", log)
	return nil
}

func httpGet(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestLiveRuleTests runs the default rules' live snippets for file rules
// with the real probes attached, as rule authors do in the VM.
func TestLiveRuleTests(t *testing.T) {
	testenv.RequireRoot(t)
	out, err := exec.Command(sensorBin, "rules", "test", "--live", "--wait", "5s", "--containerd-socket", "",
		"../../rules/tests/file.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("live rule tests: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), " passed, 0 failed") || strings.Contains(string(out), "\n0 passed") {
		t.Fatalf("live summary:\n%s", out)
	}
}

// TestRecordReplay records enriched events with `sensor trace --record` and
// evaluates them offline with `sensor replay`.
func TestRecordReplay(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "recorded.txt")
	os.WriteFile(target, []byte("x"), 0o644)
	rulesFile := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rulesFile, []byte(fmt.Sprintf(e2eRule, target)), 0o644)
	rec := filepath.Join(dir, "events.jsonl")

	trace, stdout := startTrace(t, "--types", "open", "--json", "--record", rec, "--containerd-socket", "")
	go io.Copy(io.Discard, stdout)
	testenv.Eventually(t, 15*time.Second, func() bool {
		os.ReadFile(target) // opened until the recording holds it
		b, _ := os.ReadFile(rec)
		return strings.Contains(string(b), target)
	}, "the recording never held the open of %s", target)
	trace.Process.Signal(syscall.SIGINT)
	if err := trace.Wait(); err != nil {
		t.Fatalf("trace exit: %v", err)
	}
	b, _ := os.ReadFile(rec)
	var line string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, target) {
			line = l
			break
		}
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("recorded line: %v: %q", err, line)
	}
	if ev["proc.pid"] != float64(os.Getpid()) || ev["proc.pname"] == nil || ev["container.id"] != "host" {
		t.Errorf("recorded event lacks enrichment (pid, parent, container): %s", line)
	}
	out, err := exec.Command(sensorBin, "replay", "--rules", rulesFile, rec).Output()
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if !strings.Contains(string(out), "Warning Test file opened (file="+target) {
		t.Fatalf("replay printed:\n%s", out)
	}
}
