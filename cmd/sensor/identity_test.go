package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// narrowRules are rule sets that use no exec, fork or exit event: the
// process table and container identity must be right all the same, because
// the kernel sends the process lifecycle whatever the rules need.
var narrowRules = []struct {
	name  string
	rules string
	cmd   string // run by /bin/sh -c inside the container
	proc  string // proc.name expected on the alert
}{
	{
		name: "open only",
		rules: `- rule: Shadow read in a container (test)
  desc: open-only rule set
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow and container.id != host
  output: shadow read (container=%container.id name=%container.name proc=%proc.name parent=%proc.pname)
  priority: WARNING
`,
		cmd:  "cat /etc/shadow > /dev/null; true", // not the last command: sh forks cat
		proc: "cat",
	},
	{
		name: "connect only",
		rules: `- rule: Connect from a container (test)
  desc: connect-only rule set
  condition: evt.type = connect and container.id != host and fd.sport = 9
  output: connect (container=%container.id name=%container.name proc=%proc.name parent=%proc.pname)
  priority: WARNING
`,
		cmd:  "nc -w 1 127.0.0.1 9 < /dev/null; true",
		proc: "nc",
	},
}

// TestContainerIdentityNarrowRules runs a real container under containerd
// while `sensor run` loads a rule set of only open (or only connect) rules:
// the alert names the container and the process's parent inside it.
func TestContainerIdentityNarrowRules(t *testing.T) {
	_, sock, rootfs := containerTestEnv(t)

	for i, tc := range narrowRules {
		t.Run(tc.name, func(t *testing.T) {
			rulesFile := filepath.Join(t.TempDir(), "narrow.yaml")
			if err := os.WriteFile(rulesFile, []byte(tc.rules), 0o644); err != nil {
				t.Fatal(err)
			}
			d := startSensor(t, "run", "--rules", rulesFile,
				"--data-dir", filepath.Join(t.TempDir(), "data"), "--output", "stdout", "--metrics-addr", "",
				"--containerd-socket", sock, "--coalesce", "0")
			alerts := scanJSON(d.stdout)
			id := fmt.Sprintf("tl-narrow-%d-%d", os.Getpid(), i)
			runContainer(t, sock, rootfs, id, tc.cmd)

			deadline := time.After(20 * time.Second)
			for {
				select {
				case a := <-alerts:
					f, _ := a["output_fields"].(map[string]any)
					if f["proc.name"] != tc.proc {
						continue
					}
					if f["container.id"] != id[:12] || f["container.name"] != id || f["proc.pname"] != "sh" {
						t.Fatalf("alert fields: container.id=%v container.name=%v proc.pname=%v, want %s, %s, sh\nsensor log:\n%s",
							f["container.id"], f["container.name"], f["proc.pname"], id[:12], id, d.log)
					}
					d.stop(t)
					return
				case <-deadline:
					t.Fatalf("no alert from %s in the container after 20s\nsensor log:\n%s", tc.proc, d.log)
				}
			}
		})
	}
}

// TestTraceTypesKeepsIdentity: `sensor trace --types open` prints only
// opens, and they carry the container and parent of a process that the
// trace saw start only through the (unprinted) lifecycle events.
func TestTraceTypesKeepsIdentity(t *testing.T) {
	_, sock, rootfs := containerTestEnv(t)

	_, stdout := startTrace(t, "--types", "open", "--json", "--containerd-socket", sock)
	events := scanJSON(bufio.NewScanner(stdout))
	id := fmt.Sprintf("tl-trace-open-%d", os.Getpid())
	runContainer(t, sock, rootfs, id, "cat /etc/shadow > /dev/null; true")

	deadline := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			switch ev["evt.type"] {
			case "open", "openat", "openat2", "creat":
			default:
				t.Fatalf("--types open printed a %v event: %v", ev["evt.type"], ev)
			}
			if ev["fd.name"] != "/etc/shadow" || ev["proc.name"] != "cat" {
				continue
			}
			if ev["container.id"] != id[:12] || ev["container.name"] != id || ev["proc.pname"] != "sh" {
				t.Fatalf("open of /etc/shadow: container.id=%v container.name=%v proc.pname=%v, want %s, %s, sh",
					ev["container.id"], ev["container.name"], ev["proc.pname"], id[:12], id)
			}
			return
		case <-deadline:
			t.Fatal("no open of /etc/shadow by cat in the container after 20s")
		}
	}
}

// scanJSON decodes JSON lines from sc in the background.
func scanJSON(sc *bufio.Scanner) <-chan map[string]any {
	ch := make(chan map[string]any, 1024)
	go func() {
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				ch <- m
			}
		}
	}()
	return ch
}

// runContainer runs cmd with /bin/sh -c in a fresh busybox container.
func runContainer(t *testing.T, sock, rootfs, id, cmd string) {
	t.Helper()
	out, err := exec.Command("ctr", "--address", sock, "run", "--rm", "--rootfs", rootfs, id,
		"/bin/sh", "-c", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr run: %v\n%s", err, out)
	}
}
