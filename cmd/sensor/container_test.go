package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

// startTestContainerd runs a containerd with its own root, state and socket
// under dir (CRI off), and stops it when the test ends.
func startTestContainerd(t testing.TB, dir string) string {
	t.Helper()
	_, errC := exec.LookPath("containerd")
	_, errR := exec.LookPath("runc")
	testenv.Require(t, errC == nil && errR == nil, "containerd and runc (apt packages containerd, runc)")
	cfg, sock, err := testenv.WriteContainerdConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	cmd := exec.Command("containerd", "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	testenv.Eventually(t, 20*time.Second, func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, "test containerd did not listen on %s", sock)
	return sock
}

// containerTestEnv is the setup of the container tests: root, a private
// containerd (its socket) and a busybox root filesystem, all removed when
// the test ends; dir is the test's own folder.
func containerTestEnv(t *testing.T) (dir, sock, rootfs string) {
	t.Helper()
	testenv.RequireRoot(t)
	dir = t.TempDir()
	sock = startTestContainerd(t, dir)
	rootfs, cleanup, err := busyboxRootfs()
	testenv.Require(t, err == nil, fmt.Sprintf("busybox-static for a container rootfs: %v", err))
	t.Cleanup(cleanup)
	return dir, sock, rootfs
}

// TestContainerAlertsEndToEnd runs a short-lived privileged container under a
// real containerd + runc while `sensor run` watches with the default rules
// and the product brief's seed rules: posture rules fire once for the
// container start, and its exec/open alerts carry its metadata although it
// exits at once.
func TestContainerAlertsEndToEnd(t *testing.T) {
	dir, sock, rootfs := containerTestEnv(t)

	d := startSensor(t, "run", "--rules", "../../rules", "--rules", "../../rules/examples/seed",
		"--data-dir", filepath.Join(dir, "data"), "--output", "stdout", "--metrics-addr", "",
		"--containerd-socket", sock, "--coalesce", "0")
	alerts := make(chan map[string]any, 256)
	go func() {
		for d.stdout.Scan() {
			var a map[string]any
			if json.Unmarshal(d.stdout.Bytes(), &a) == nil {
				alerts <- a
			}
		}
		close(alerts)
	}()
	id := fmt.Sprintf("tl-e2e-%d", os.Getpid())
	out, err := exec.Command("ctr", "--address", sock, "run", "--rm", "--privileged", "--rootfs", rootfs, id,
		"/bin/sh", "-c", "cat /etc/shadow > /dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("ctr run: %v\n%s", err, out)
	}

	want := map[string]bool{
		"Privileged container started":      false, // default posture rule, evt.type=container
		"Unexpected Privileged Container":   false, // seed rules
		"Privileged Container":              false,
		"Sensitive File Access":             false,
		"Unauthorized Process in Container": false,
		"Read sensitive file untrusted":     false, // default file rule
	}
	starts := 0
	deadline := time.After(20 * time.Second)
	for missing := len(want); missing > 0; {
		select {
		case a, ok := <-alerts:
			if !ok {
				t.Fatalf("sensor output ended; alerts missing: %v\nsensor log:\n%s", want, d.log)
			}
			f, _ := a["output_fields"].(map[string]any)
			rule, _ := a["rule"].(string)
			if f["container.id"] != id && f["container.name"] != id {
				continue // another process of the host
			}
			if rule == "Privileged container started" {
				starts++
			}
			if done, ok := want[rule]; ok && !done {
				want[rule] = true
				missing--
				if name, ok := f["container.name"]; ok && name != id {
					t.Errorf("%s: container.name=%v, want %s", rule, name, id)
				}
			}
		case <-deadline:
			t.Fatalf("alerts missing after 20s: %v\nsensor log:\n%s", want, d.log)
		}
	}
	// Anything else for this container arrives within a moment; the start
	// event must not repeat.
	drain := time.After(time.Second)
	for done := false; !done; {
		select {
		case a, ok := <-alerts:
			if !ok {
				done = true
				break
			}
			f, _ := a["output_fields"].(map[string]any)
			if a["rule"] == "Privileged container started" && f["container.id"] == id {
				starts++
			}
		case <-drain:
			done = true
		}
	}
	if starts != 1 {
		t.Errorf("container start alert fired %d times, want once", starts)
	}
	// Keep reading: host activity may raise alerts until the sensor exits,
	// and a full stdout pipe would stall its stop.
	go func() {
		for range alerts {
		}
	}()
	d.stop(t)
}
