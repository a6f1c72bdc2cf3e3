package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

// alertLine is one JSON alert of the stdout output, kept raw too.
type alertLine struct {
	raw    []byte
	rule   string
	fields map[string]any
}

// collectAlerts parses the sensor's stdout alerts into a channel.
func collectAlerts(d *daemon) <-chan alertLine {
	ch := make(chan alertLine, 1024)
	go func() {
		for d.stdout.Scan() {
			var a struct {
				Rule         string         `json:"rule"`
				OutputFields map[string]any `json:"output_fields"`
			}
			raw := bytes.Clone(d.stdout.Bytes())
			if json.Unmarshal(raw, &a) == nil {
				ch <- alertLine{raw: raw, rule: a.Rule, fields: a.OutputFields}
			}
		}
		close(ch)
	}()
	return ch
}

// waitAlert returns the first alert satisfying ok, failing after 20s.
func waitAlert(t *testing.T, d *daemon, ch <-chan alertLine, what string, ok func(alertLine) bool) alertLine {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case a, open := <-ch:
			if !open {
				t.Fatalf("sensor output ended before %s\n%s", what, d.log)
			}
			if ok(a) {
				return a
			}
		case <-deadline:
			t.Fatalf("no alert for %s after 20s\n%s", what, d.log)
		}
	}
}

// TestEnvAndUserRulesEndToEnd runs the upstream Falco rule files under
// `sensor run` and triggers, with real execs, the environment rules
// (GLIBC_TUNABLES, HTTP_PROXY) and "System user interactive" (login run as
// the daemon system user). A credential in the environment reaches the rule
// but never the alert JSON.
func TestEnvAndUserRulesEndToEnd(t *testing.T) {
	testenv.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	testenv.Require(t, err == nil, "setpriv (util-linux)")
	login, err := exec.LookPath("login")
	testenv.Require(t, err == nil, "login (package login)")
	curl, err := exec.LookPath("curl")
	testenv.Require(t, err == nil, "curl")

	dir := t.TempDir()
	d := startSensor(t, "run", "--rules", "../../testdata/falco-rules/falco_rules.yaml",
		"--rules", "../../testdata/falco-rules/falco-incubating_rules.yaml",
		"--data-dir", filepath.Join(dir, "data"), "--output", "stdout", "--metrics-addr", "",
		"--containerd-socket", "", "--coalesce", "0")
	alerts := collectAlerts(d)

	const secret = "tl-s3cr3t-value-4711"
	cmd := exec.Command("/bin/true")
	// The outputs carry no pid: a marker in the environment finds our execs.
	mark := fmt.Sprintf("TL_TEST=%d", os.Getpid())
	ours := func(rule string) func(alertLine) bool {
		return func(a alertLine) bool {
			env, _ := a.fields["proc.env"].(string)
			return a.rule == rule && strings.Contains(env, mark)
		}
	}
	cmd.Env = []string{"GLIBC_TUNABLES=glibc.malloc.mxfast=0", "API_TOKEN=" + secret, "DB_PASSWORD=" + secret, "PATH=/usr/bin:/bin", mark}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	a := waitAlert(t, d, alerts, "GLIBC_TUNABLES", ours("Potential Local Privilege Escalation via Environment Variables Misuse"))
	if bytes.Contains(a.raw, []byte(secret)) {
		t.Errorf("alert JSON holds the secret: %s", a.raw)
	}
	env, _ := a.fields["proc.env"].(string)
	if !strings.Contains(env, "GLIBC_TUNABLES=glibc.malloc.mxfast=0") || !strings.Contains(env, "API_TOKEN=<redacted>") ||
		!strings.Contains(env, "DB_PASSWORD=<redacted>") {
		t.Errorf("proc.env = %q", env)
	}
	if a.fields["user.name"] != "root" {
		t.Errorf("user.name = %v", a.fields["user.name"])
	}

	cmd = exec.Command(curl, "--version")
	cmd.Env = []string{"HTTP_PROXY=http://127.0.0.1:9", "PATH=/usr/bin:/bin", mark}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	waitAlert(t, d, alerts, "HTTP_PROXY", ours("Program run with disallowed http proxy env"))

	// login as the daemon system user: it refuses to work without root, but
	// its exec is what the rule sees.
	cmd = exec.Command(setpriv, "--reuid", "daemon", "--regid", "daemon", "--clear-groups", login)
	_ = cmd.Run()
	a = waitAlert(t, d, alerts, "System user interactive", func(a alertLine) bool {
		return a.rule == "System user interactive" && a.fields["proc.name"] == "login"
	})
	if a.fields["user.name"] != "daemon" || a.fields["user.uid"] != float64(1) {
		t.Errorf("output_fields %v", a.fields)
	}
	d.stop(t)
}

// TestContainerUserName runs a container whose own /etc/passwd names uid
// 1000 "app" (the host's uid 1000 has another name) and checks that alerts
// of its processes name the container's user and group.
func TestContainerUserName(t *testing.T) {
	dir, sock, rootfs := containerTestEnv(t)
	if err := os.Chmod(rootfs, 0o755); err != nil { // uid 1000 walks it
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/ash\n",
		"etc/group":  "root:x:0:\napp:x:1000:\n",
	} {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(`- rule: Exec by uid 1000 in a container
  desc: test
  condition: evt.type in (execve, execveat) and container.id != host and user.uid = 1000
  output: "exec (user=%user.name group=%group.name home=%user.homedir shell=%user.shell container=%container.name)"
  priority: WARNING
`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startSensor(t, "run", "--rules", rules, "--data-dir", filepath.Join(dir, "data"), "--output", "stdout",
		"--metrics-addr", "", "--containerd-socket", sock, "--coalesce", "0")
	alerts := collectAlerts(d)

	id := fmt.Sprintf("tl-users-%d", os.Getpid())
	out, err := exec.Command("ctr", "--address", sock, "run", "--rm", "--rootfs", rootfs, id,
		"/bin/su", "app", "-c", "/bin/true").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr run: %v\n%s", err, out)
	}
	a := waitAlert(t, d, alerts, "exec as uid 1000 in the container", func(a alertLine) bool {
		return a.fields["container.name"] == id && a.fields["user.name"] != nil
	})
	want := map[string]any{"user.name": "app", "group.name": "app", "user.homedir": "/home/app", "user.shell": "/bin/ash"}
	for k, v := range want {
		if a.fields[k] != v {
			t.Errorf("%s = %v, want %v (%s)", k, a.fields[k], v, a.raw)
		}
	}
	d.stop(t)
}
