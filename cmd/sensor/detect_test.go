package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/testenv"
)

// A detection scenario: one attack technique acted out for real, in the
// spirit of the syscall actions of Falco's event-generator (which cannot be
// fetched here: the module proxy refuses it), written in busybox shell.
type scenario struct {
	action     string   // what is done, named like event-generator's action
	upstream   string   // the upstream Falco rule it targets
	script     string   // run by /bin/sh -c in a fresh busybox container
	privileged bool     // run the container privileged
	env        []string // extra environment of the container
	host       bool     // run on the host instead (script by /bin/sh -c)
	note       string   // why the upstream rule cannot fire here, if known
}

// Every network peer is inside the container's own network namespace
// (loopback), so nothing leaves the machine.
var scenarios = []scenario{
	{action: "ReadSensitiveFileUntrusted", upstream: "Read sensitive file untrusted", script: "cat /etc/shadow > /dev/null; true"},
	{action: "ReadSensitiveFileTrustedAfterStartup", upstream: "Read sensitive file trusted after startup",
		script: "ln -s /bin/busybox /tmp/sshd; exec -a sh /tmp/sshd -c 'sleep 1; cat /etc/shadow > /dev/null; true'",
		note:   "server_procs excludes sshd itself; proc_is_new needs 5 s of process age"},
	{action: "DirectoryTraversalMonitoredFileRead", upstream: "Directory traversal monitored file read", script: "ln -s /bin/busybox /tmp/webapp; exec -a sh /tmp/webapp -c 'cat /bin/../tmp/../etc/shadow > /dev/null; true'"},
	{action: "RunShellUntrusted", upstream: "Run shell untrusted", script: "ln -s /bin/busybox /tmp/nginx; exec -a sh /tmp/nginx -c 'sh -c true; true'"},
	{action: "SearchPrivateKeysOrPasswords", upstream: "Search Private Keys or Passwords", script: "/bin/find / -name id_rsa 2>/dev/null; true"},
	{action: "FindAWSCredentials", upstream: "Find AWS Credentials", script: "find / -path '*/.aws/credentials' 2>/dev/null; grep -r aws_access_key_id /tmp 2>/dev/null; true"},
	{action: "ClearLogActivities", upstream: "Clear Log Activities", script: "echo entry > /var/log/syslog; : > /var/log/syslog; true"},
	{action: "RemoveBulkDataFromDisk", upstream: "Remove Bulk Data from Disk", script: "echo data > /tmp/victim; shred -u /tmp/victim; true"},
	{action: "CreateSymlinkOverSensitiveFiles", upstream: "Create Symlink Over Sensitive Files", script: "ln -s /etc/shadow /tmp/shadow-link; true"},
	{action: "CreateHardlinkOverSensitiveFiles", upstream: "Create Hardlink Over Sensitive Files", script: "ln /etc/shadow /tmp/shadow-hard; true"},
	{action: "PacketSocketCreatedInContainer", upstream: "Packet socket created in container", script: "arping -c 1 -w 1 -I lo 127.0.0.1 >/dev/null 2>&1; true"},
	{action: "NetcatRemoteCodeExecutionInContainer", upstream: "Netcat Remote Code Execution in Container",
		script: "(nc -l -p 4444 >/dev/null &); sleep 0.3; nc 127.0.0.1 4444 -e /bin/true; true"},
	{action: "RedirectStdoutStdinToNetworkConnectionInContainer", upstream: "Redirect STDOUT/STDIN to Network Connection in Container",
		script: "(nc -l -p 4445 >/dev/null &); sleep 0.3; nc 127.0.0.1 4445 -e /bin/true; true"},
	{action: "ContactK8SAPIServerFromContainer", upstream: "Contact K8S API Server From Container",
		script: "(nc -l -p 6443 >/dev/null &); sleep 0.3; nc -w 1 127.0.0.1 6443 </dev/null; true",
		env:    []string{"KUBERNETES_SERVICE_HOST=127.0.0.1", "KUBERNETES_SERVICE_PORT=6443"},
		note:   "the upstream macro k8s_api_server matches only the DNS name kubernetes.default.svc.cluster.local (fd.sip.name)"},
	{action: "LinuxKernelModuleInjection", upstream: "Linux Kernel Module Injection Detected", privileged: true,
		script: "echo notamodule > /tmp/x.ko; insmod /tmp/x.ko 2>/dev/null; true"},
	{action: "DebugfsLaunchedInPrivilegedContainer", upstream: "Debugfs Launched in Privileged Container", privileged: true,
		script: "ln -s /bin/busybox /tmp/debugfs; exec -a true /tmp/debugfs; true"},
	{action: "DetectReleaseAgentFileContainerEscapes", upstream: "Detect release_agent File Container Escapes", privileged: true,
		script: "mkdir -p /tmp/cg; echo /x > /tmp/cg/release_agent; true"},
	{action: "ExecutionFromDevShm", upstream: "Execution from /dev/shm", privileged: true, // the OCI default mounts /dev/shm noexec
		script: "mount -o remount,exec /dev/shm; cp /bin/busybox /dev/shm/x && /dev/shm/x true; true"},
	{action: "DropAndExecuteNewBinaryInContainer", upstream: "Drop and execute new binary in container", privileged: true,
		script: "cd /tmp && mkdir l u w m && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && cp /bin/busybox m/dropped && m/dropped true; true"},
	{action: "ModifyShellConfigurationFile", upstream: "Modify Shell Configuration File", script: "echo 'alias ls=rm' | /bin/tee -a /root/.bashrc >/dev/null; true"},
	{action: "ReadSshInformation", upstream: "Read ssh information", script: "mkdir -p /root/.ssh; echo k > /root/.ssh/known_hosts; /bin/cat /root/.ssh/known_hosts >/dev/null; true"},
	{action: "ScheduleCronJobs", upstream: "Schedule Cron Jobs", script: "crontab -l 2>/dev/null; true"},
	{action: "ChangeThreadNamespace", upstream: "Change thread namespace", privileged: true, script: "nsenter -t 1 -m true; true"},
	{action: "ChangeNamespacePrivilegesViaUnshare", upstream: "Change namespace privileges via unshare", script: "unshare -U true 2>/dev/null; unshare -m true 2>/dev/null; true"},
	{action: "NonSudoSetuid", upstream: "Non sudo setuid", script: "setpriv --reuid 65534 --regid 65534 --clear-groups true; true"},
	{action: "UserMgmtBinaries", upstream: "User mgmt binaries", host: true, // the rule leaves containers out
		script: "d=$(mktemp -d) && ln -s \"$(command -v busybox)\" $d/useradd && (exec -a true $d/useradd); rm -r $d"},
	{action: "CreateFilesBelowDev", upstream: "Create files below dev", script: "echo x > /dev/tl-created; true"},
	{action: "LaunchPackageManagementProcessInContainer", upstream: "Launch Package Management Process in Container",
		script: "ln -s /bin/busybox /tmp/apk; exec -a true /tmp/apk; true"},
	{action: "LaunchSuspiciousNetworkToolInContainer", upstream: "Launch Suspicious Network Tool in Container", script: "nc -z -w 1 127.0.0.1 9 2>/dev/null; true"},
	{action: "DeleteOrRenameShellHistory", upstream: "Delete or rename shell history", script: "echo ls > /root/.ash_history; rm /root/.ash_history; true"},
	{action: "SetSetuidOrSetgidBit", upstream: "Set Setuid or Setgid bit", script: "cp /bin/busybox /tmp/suid; chmod u+s /tmp/suid; true"},
	{action: "LaunchRemoteFileCopyToolsInContainer", upstream: "Launch Remote File Copy Tools in Container",
		script: "ln -s /bin/busybox /tmp/scp; exec -a true /tmp/scp; true"},
	{action: "MountLaunchedInPrivilegedContainer", upstream: "Mount Launched in Privileged Container", privileged: true,
		script: "mkdir -p /tmp/mnt; mount -t tmpfs none /tmp/mnt; true"},
	{action: "AddingSshKeysToAuthorizedKeys", upstream: "Adding ssh keys to authorized_keys", script: "mkdir -p /root/.ssh; echo 'ssh-ed25519 AAAA x' >> /root/.ssh/authorized_keys; true"},
	{action: "ProgramRunWithDisallowedHttpProxyEnv", upstream: "Program run with disallowed http proxy env", env: []string{"HTTP_PROXY=http://127.0.0.1:3128"},
		script: "wget -q -T 1 -O /dev/null http://127.0.0.1:9/ 2>/dev/null; true"},
	{action: "PotentialLocalPrivilegeEscalationViaEnvironmentVariablesMisuse", upstream: "Potential Local Privilege Escalation via Environment Variables Misuse",
		script: "GLIBC_TUNABLES=glibc.tune.hwcaps=x true; env GLIBC_TUNABLES=glibc.malloc.check=3 true; true"},
	{action: "ReadEnvironmentVariableFromProcFiles", upstream: "Read environment variable from /proc files", script: "cat /proc/1/environ > /dev/null; true"},
	{action: "SystemUserInteractive", upstream: "System user interactive", host: true,
		script: "setpriv --reuid daemon --regid daemon --clear-groups timeout 2 login -h 2>/dev/null </dev/null; true"},
}

// detectSets are the rule sets the report compares.
var detectSets = []struct {
	name  string
	rules []string
}{
	{"upstream", []string{"../../testdata/falco-rules/falco_rules.yaml", "../../testdata/falco-rules/falco-incubating_rules.yaml"}},
	{"default", []string{"../../rules"}},
}

var skippedRule = regexp.MustCompile(`msg="rule skipped" rule="((?:[^"\\]|\\.)*)"`)

// BenchmarkDetect acts out every scenario under `sensor run`, once with
// Falco's upstream rule files and once with Tripline's default rules, and
// prints a Markdown table: whether the targeted upstream rule fired, and
// which default rules fired at Warning or above (container-start posture
// rules left out). A report, not a pass/fail
// test (`make detect`); root only.
//
//	go test -run '^$' -bench Detect -benchtime 1x ./cmd/sensor
func BenchmarkDetect(b *testing.B) {
	testenv.RequireRoot(b)
	dir := b.TempDir()
	sock := startTestContainerd(b, dir)

	// Posture rules fire on the container start, whatever runs inside: they
	// say nothing of the action.
	posture := map[string]bool{}
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{Captured: deliverable(config.Default())})
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range rs.Rules() {
		if slices.Equal(r.Types(), []event.Type{event.TypeContainer}) {
			posture[r.Name] = true
		}
	}

	fired := map[string]map[string][]string{} // set -> action -> rules
	skipped := map[string]bool{}
	for si, set := range detectSets {
		args := []string{"run", "--data-dir", filepath.Join(dir, fmt.Sprintf("data%d", si)), "--output", "stdout",
			"--metrics-addr", "", "--containerd-socket", sock, "--coalesce", "0", "--priority", "debug"}
		for _, r := range set.rules {
			args = append(args, "--rules", r)
		}
		d := startSensor(b, args...)
		alerts := scanJSON(d.stdout)
		byAction := map[string][]string{}
		owner := map[string]string{} // container name -> action
		type window struct {
			action     string
			start, end time.Time
		}
		var hostRuns []window
		for i, sc := range scenarios {
			start := time.Now()
			if sc.host {
				_ = exec.Command("/bin/sh", "-c", sc.script).Run()
				hostRuns = append(hostRuns, window{sc.action, start, time.Now()})
				continue
			}
			id := fmt.Sprintf("tldet%02d%d%04d", i, si, os.Getpid()%10000)
			owner[id] = sc.action
			if err := runDetectContainer(sock, id, sc); err != nil {
				b.Logf("%s: %v", sc.action, err)
			}
		}
		// Late alerts: wait until none has arrived for two seconds.
		quiet := time.NewTimer(2 * time.Second)
	collect:
		for {
			select {
			case a := <-alerts:
				quiet.Reset(2 * time.Second)
				f, _ := a["output_fields"].(map[string]any)
				rule, _ := a["rule"].(string)
				prio, _ := a["priority"].(string)
				if set.name == "default" && (!atLeastWarning(prio) || posture[rule]) {
					continue
				}
				action := owner[fmt.Sprint(f["container.name"])]
				if action == "" && f["container.id"] == "host" {
					t, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(a["time"]))
					for _, w := range hostRuns {
						if !t.Before(w.start) && !t.After(w.end) {
							action = w.action
						}
					}
				}
				if action != "" && !slices.Contains(byAction[action], rule) {
					byAction[action] = append(byAction[action], rule)
				}
			case <-quiet.C:
				break collect
			}
		}
		d.stop(b)
		if set.name == "upstream" {
			for _, m := range skippedRule.FindAllStringSubmatch(d.log.String(), -1) {
				skipped[strings.ReplaceAll(m[1], `\"`, `"`)] = true
			}
		}
		fired[set.name] = byAction
	}

	var sb strings.Builder
	upHits, defHits := 0, 0
	sb.WriteString("\n| action | upstream rule | upstream fired | default rules fired (Warning+) |\n|---|---|---|---|\n")
	for _, sc := range scenarios {
		up := "no"
		switch {
		case slices.Contains(fired["upstream"][sc.action], sc.upstream):
			up = "**yes**"
			upHits++
		case skipped[sc.upstream]:
			up = "no (rule skipped: event type not captured)"
		case sc.note != "":
			up = "no (" + sc.note + ")"
		}
		def := strings.Join(fired["default"][sc.action], "; ")
		if def == "" {
			def = "—"
		} else {
			defHits++
		}
		where := ""
		if sc.privileged {
			where = " (privileged)"
		} else if sc.host {
			where = " (host)"
		}
		fmt.Fprintf(&sb, "| %s%s | %s | %s | %s |\n", sc.action, where, sc.upstream, up, def)
	}
	fmt.Fprintf(&sb, "\nupstream rules fired on %d of %d actions; default rules (Warning+) on %d of %d\n", upHits, len(scenarios), defHits, len(scenarios))
	fmt.Print(sb.String())
	b.ReportMetric(float64(upHits), "upstream-detected")
	b.ReportMetric(float64(defHits), "default-detected")
	b.ReportMetric(float64(len(scenarios)), "actions")
}

func atLeastWarning(p string) bool {
	switch strings.ToLower(p) {
	case "emergency", "alert", "critical", "error", "warning":
		return true
	}
	return false
}

// runDetectContainer runs one scenario in a fresh busybox container.
func runDetectContainer(sock, id string, sc scenario) error {
	rootfs, cleanup, err := busyboxRootfs()
	if err != nil {
		return err
	}
	defer cleanup()
	if err := os.MkdirAll(filepath.Join(rootfs, "root"), 0o700); err != nil {
		return err
	}
	args := []string{"--address", sock, "run", "--rm"}
	if sc.privileged {
		args = append(args, "--privileged")
	}
	for _, e := range sc.env {
		args = append(args, "--env", e)
	}
	args = append(args, "--rootfs", rootfs, id, "/bin/sh", "-c", sc.script)
	cmd := exec.Command("ctr", args...)
	done := make(chan error, 1)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("ctr run: %v: %s", err, out.String())
		}
		return nil
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		_ = exec.Command("ctr", "--address", sock, "task", "kill", "-s", "SIGKILL", id).Run()
		_ = exec.Command("ctr", "--address", sock, "container", "rm", id).Run()
		return fmt.Errorf("ctr run: timed out: %s", out.String())
	}
}
