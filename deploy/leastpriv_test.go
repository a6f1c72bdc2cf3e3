package deploy_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

// setprivArgs confines a command to exactly caps (names without CAP_, lower
// case for setpriv), the way the least-privilege DaemonSet confines the
// container: uid 0, bounding/inheritable/ambient sets reduced to caps, and
// no_new_privs (allowPrivilegeEscalation: false). For uid 0 the kernel then
// grants exactly the bounding set on exec.
func setprivArgs(caps []string) []string {
	list := "-all"
	for _, c := range caps {
		list += ",+" + strings.ToLower(c)
	}
	return []string{"--inh-caps=" + list, "--ambient-caps=" + list, "--bounding-set=" + list, "--no-new-privs", "--"}
}

// confinedSensor is a sensor process started under setpriv.
type confinedSensor struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout []string
	stderr strings.Builder
	ready  chan struct{}
	done   chan struct{}
}

func startConfined(t *testing.T, caps []string, args ...string) *confinedSensor {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	testenv.Require(t, err == nil, "setpriv (util-linux) to run the sensor with a reduced capability set")
	caps = grantable(t, caps)
	bin := sensorBinary(t)
	cmd := exec.Command(setpriv, append(setprivArgs(caps), append([]string{bin}, args...)...)...)
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &confinedSensor{cmd: cmd, ready: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.mu.Lock()
			s.stdout = append(s.stdout, sc.Text())
			s.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		defer readers.Done()
		var once sync.Once
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.stderr.WriteString(line + "\n")
			s.mu.Unlock()
			if strings.Contains(line, "ready") {
				once.Do(func() { close(s.ready) })
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		readers.Wait()
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop sends SIGINT and waits, then kills what is left of the process group.
func (s *confinedSensor) stop(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Errorf("sensor did not exit within 10s of SIGINT; killing it")
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

func (s *confinedSensor) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// waitReady waits for the "ready" line, or fails with the sensor's stderr.
func (s *confinedSensor) waitReady(t *testing.T, what string) {
	t.Helper()
	select {
	case <-s.ready:
	case <-s.done:
		t.Fatalf("sensor %s exited before ready under the least-privilege capabilities %v:\n%s", what, leastPrivilegeCaps, s.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("sensor %s not ready within 20s:\n%s", what, s.logs())
	}
}

// lineWith returns the first stdout line containing marker.
func (s *confinedSensor) lineWith(marker string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.stdout {
		if strings.Contains(l, marker) {
			return l, true
		}
	}
	return "", false
}

// execMarker runs /bin/true with a unique argument, again every second (the
// first exec may race the probes on a loaded machine), until the sensor
// prints a line with it.
func execMarker(t *testing.T, s *confinedSensor, what string) string {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	marker := "tripline-leastpriv-" + hex.EncodeToString(b)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !s.exited() {
		if err := exec.Command("/bin/true", marker).Run(); err != nil {
			t.Fatal(err)
		}
		for poll := time.Now().Add(time.Second); time.Now().Before(poll); time.Sleep(10 * time.Millisecond) {
			if line, ok := s.lineWith(marker); ok {
				return line
			}
		}
	}
	t.Fatalf("sensor %s under %v never reported the exec of /bin/true %s:\n%s", what, leastPrivilegeCaps, marker, s.logs())
	return ""
}

func (s *confinedSensor) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// TestLeastPrivilegeTrace runs `sensor trace` with exactly the capabilities
// of the least-privilege DaemonSet: the probes must load and attach, and an
// exec must be captured.
func TestLeastPrivilegeTrace(t *testing.T) {
	testenv.RequireRoot(t)
	s := startConfined(t, leastPrivilegeCaps, "trace", "--json", "--types", "exec")
	s.waitReady(t, "trace")
	line := execMarker(t, s, "trace")
	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Fatalf("trace --json printed a line that is not JSON: %v\n%s", err, line)
	}
	s.stop(t)
	if strings.Contains(s.logs(), "operation not permitted") {
		t.Errorf("permission errors under the least-privilege set:\n%s", s.logs())
	}
}

// TestLeastPrivilegeNeedsBPF is the control: without CAP_BPF the same
// command must fail, proving the confinement above is real.
func TestLeastPrivilegeNeedsBPF(t *testing.T) {
	testenv.RequireRoot(t)
	var caps []string
	for _, c := range leastPrivilegeCaps {
		if c != "BPF" {
			caps = append(caps, c)
		}
	}
	s := startConfined(t, caps, "trace", "--json", "--types", "exec")
	select {
	case <-s.ready:
		t.Fatalf("sensor trace became ready without CAP_BPF; setpriv did not confine it:\n%s", s.logs())
	case <-s.done:
		if strings.Contains(s.logs(), "setpriv:") {
			t.Fatalf("setpriv failed, not the sensor:\n%s", s.logs())
		}
		t.Logf("without CAP_BPF, as expected:\n%s", s.logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("sensor trace neither failed nor became ready without CAP_BPF:\n%s", s.logs())
	}
}

// TestLeastPrivilegeRun runs the daemon itself under the least-privilege set,
// as the DaemonSet does (minus containerd, which internal/enrich tests): rules
// load, the probes attach, /healthz answers on the metrics address, a rule
// fires on an exec, and the process table seeded from /proc knows the exe of
// a process older than the sensor.
func TestLeastPrivilegeRun(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	writeFile(t, rules, `- rule: Least privilege marker
  desc: an exec whose arguments carry the test's marker
  condition: evt.type in (execve, execveat) and proc.args contains "tripline-leastpriv-"
  output: marker exec (command=%proc.cmdline parent_exe=%proc.pexepath)
  priority: WARNING
`, 0o644)
	// The DaemonSet mounts the host's tracefs: have one, as most hosts do.
	ensureTracefs(t)
	addr := freeLoopbackAddr(t)
	s := startConfined(t, leastPrivilegeCaps, "run",
		"--rules", rules, "--output", "stdout", "--data-dir", filepath.Join(dir, "data"),
		"--containerd-socket", "", "--metrics-addr", addr, "--coalesce", "0")
	s.waitReady(t, "run")

	// The metrics listener starts alongside the pipeline: poll until it answers.
	client := &http.Client{Timeout: 2 * time.Second}
	status := "no answer"
	testenv.Eventually(t, 10*time.Second, func() bool {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err != nil {
			status = err.Error()
			return s.exited()
		}
		resp.Body.Close()
		status = resp.Status
		return resp.StatusCode == http.StatusOK
	}, "waiting for /healthz")
	if status != "200 OK" {
		t.Fatalf("/healthz: %s under the least-privilege set\n%s", status, s.logs())
	}

	line := execMarker(t, s, "run")
	var alert map[string]any
	if err := json.Unmarshal([]byte(line), &alert); err != nil {
		t.Fatalf("alert is not JSON: %v\n%s", err, line)
	}
	if alert["rule"] != "Least privilege marker" {
		t.Errorf("alert for rule %v, want Least privilege marker:\n%s", alert["rule"], line)
	}
	// The parent is this test process, which predates the sensor: its exe
	// comes from the /proc seed, and reading /proc/<pid>/exe of a process
	// with more capabilities than the reader takes CAP_SYS_PTRACE.
	fields, _ := alert["output_fields"].(map[string]any)
	if pexe, _ := fields["proc.pexepath"].(string); pexe == "" {
		t.Errorf("proc.pexepath of a pre-existing parent is empty: the /proc seed failed under %v:\n%s", leastPrivilegeCaps, line)
	}
	s.stop(t)
	logs := s.logs()
	if strings.Contains(logs, "permission denied") || strings.Contains(logs, "operation not permitted") {
		t.Errorf("permission errors under the least-privilege set:\n%s", logs)
	}
	if !strings.Contains(logs, "syscall_hook=syscall") {
		t.Errorf("the per-syscall hook is not in use under the least-privilege set:\n%s", logs)
	}
}

// ensureTracefs mounts tracefs at /sys/kernel/tracing unless it is there.
func ensureTracefs(t *testing.T) {
	t.Helper()
	const dir = "/sys/kernel/tracing"
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil && st.Type == 0x74726163 { // TRACEFS_MAGIC
		return
	}
	if err := syscall.Mount("tracefs", dir, "tracefs", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mounting tracefs at %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
}

// freeLoopbackAddr returns a loopback address with a port that was free a
// moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// capBits numbers the capabilities the tests use (linux/capability.h).
var capBits = map[string]uint{"DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "PERFMON": 38, "BPF": 39}

// grantable returns caps, failing (in CI) or skipping when one is outside
// this process's bounding set: no child could be given it. (The machine this
// was written on lacks CAP_SYS_RESOURCE, which the set does not need.)
func grantable(t *testing.T, caps []string) []string {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var bnd uint64
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &bnd); err != nil {
				t.Fatalf("parsing CapBnd: %v", err)
			}
		}
	}
	var out []string
	for _, c := range caps {
		bit, ok := capBits[c]
		if !ok {
			t.Fatalf("unknown capability %s", c)
		}
		if bnd&(1<<bit) == 0 {
			testenv.Require(t, false, fmt.Sprintf("CAP_%s in the test process's bounding set", c))
		}
		out = append(out, c)
	}
	return out
}

var (
	sensorOnce sync.Once
	sensorPath string
	sensorErr  error
	sensorDir  string
)

// sensorBinary builds cmd/sensor once per test binary, with the same
// environment as `go test` so that the build cache of the other packages'
// tests is reused.
func sensorBinary(t *testing.T) string {
	t.Helper()
	sensorOnce.Do(func() {
		sensorDir, sensorErr = os.MkdirTemp("", "tripline-deploy-")
		if sensorErr != nil {
			return
		}
		sensorPath = filepath.Join(sensorDir, "sensor")
		cmd := exec.Command(filepath.Join(goRoot(), "bin", "go"), "build", "-buildvcs=false", "-o", sensorPath, "./cmd/sensor")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			sensorErr = fmt.Errorf("go build ./cmd/sensor: %v\n%s", err, out)
		}
	})
	if sensorErr != nil {
		t.Fatal(sensorErr)
	}
	return sensorPath
}
