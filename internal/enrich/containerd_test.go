package enrich

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/proc"
	"github.com/tripline/tripline/internal/testenv"
)

// daemon is the containerd instance the tests start for themselves, on
// first use: its own config, root, state and socket under a temp dir, so CI
// and a developer's machine behave the same. Nil when it could not be
// started (daemonErr says why). Benchmarks and fuzzing never start it.
var (
	daemon     *containerdInstance
	daemonErr  error
	daemonOnce sync.Once
	daemonDir  string
	rootfs     string // busybox-static root filesystem shared by the test containers
)

func TestMain(m *testing.M) {
	code := m.Run()
	if daemon != nil {
		daemon.shutdown()
	}
	if daemonDir != "" {
		os.RemoveAll(daemonDir)
	}
	os.Exit(code)
}

// requireContainerd skips (fails in CI) privileged tests without a daemon.
func requireContainerd(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	daemonOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tlctd")
		if err != nil {
			daemonErr = err
			return
		}
		daemonDir = dir
		if rootfs, err = buildRootfs(filepath.Join(dir, "rootfs")); err != nil {
			daemonErr = err
			return
		}
		daemon, daemonErr = startContainerd(dir)
	})
	testenv.Require(t, daemon != nil, fmt.Sprintf("containerd + runc + busybox-static to start a test containerd (%v)", daemonErr))
}

type containerdInstance struct {
	dir, config, socket string
	mu                  sync.Mutex
	cmd                 *exec.Cmd
	log                 *os.File
}

func startContainerd(dir string) (*containerdInstance, error) {
	for _, bin := range []string{"containerd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, err
		}
	}
	config, socket, err := testenv.WriteContainerdConfig(dir)
	if err != nil {
		return nil, err
	}
	d := &containerdInstance{dir: dir, socket: socket, config: config}
	log, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return nil, err
	}
	d.log = log
	if err := d.start(); err != nil {
		return nil, err
	}
	return d, nil
}

// start runs containerd and waits until it answers.
func (d *containerdInstance) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	cmd := exec.Command("containerd", "--config", d.config)
	cmd.Stdout, cmd.Stderr = d.log, d.log
	// Its own process group (a ^C of the test does not crash it mid-way),
	// and killed if the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	d.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		cli, err := containerd.New(d.socket, containerd.WithTimeout(200*time.Millisecond))
		if err == nil {
			_, err = cli.Version(context.Background())
			cli.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	d.cmd = nil
	return errors.New("test containerd did not come up; see " + d.log.Name())
}

// kill stops containerd abruptly (a crash); the shims and their containers
// live on.
func (d *containerdInstance) kill() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		d.cmd = nil
	}
}

func (d *containerdInstance) running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

// shutdown removes every task and container left, then stops containerd.
func (d *containerdInstance) shutdown() {
	if cli, err := containerd.New(d.socket, containerd.WithTimeout(time.Second)); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		nss, _ := cli.NamespaceService().List(ctx)
		for _, ns := range nss {
			nctx := namespaces.WithNamespace(ctx, ns)
			cs, _ := cli.Containers(nctx)
			for _, c := range cs {
				if task, err := c.Task(nctx, nil); err == nil {
					_, _ = task.Delete(nctx, containerd.WithProcessKill)
				}
				_ = c.Delete(nctx)
			}
		}
		cancel()
		cli.Close()
	}
	d.mu.Lock()
	if d.cmd != nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = d.cmd.Process.Kill()
			<-done
		}
		d.cmd = nil
	}
	d.mu.Unlock()
	d.log.Close()
}

func buildRootfs(dir string) (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	if f, err := elf.Open(bb); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				f.Close()
				return "", errors.New(bb + " is dynamically linked; install busybox-static")
			}
		}
		f.Close()
	}
	for _, sub := range []string{"bin", "proc", "dev", "sys", "tmp", "etc", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return "", err
		}
	}
	src, err := os.Open(bb)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(dir, "bin", "busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return "", err
	}
	if err := dst.Close(); err != nil {
		return "", err
	}
	for _, app := range []string{"sh", "sleep", "cat", "true", "id", "ls"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", app)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func newID(t *testing.T) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func client(t *testing.T) *containerd.Client {
	t.Helper()
	cli, err := containerd.New(daemon.socket, containerd.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// ctr is a test container.
type ctr struct {
	id, ns string
	c      containerd.Container
	task   containerd.Task
	exit   <-chan containerd.ExitStatus
}

// newContainer creates a container on the busybox rootfs, without an image.
func newContainer(t *testing.T, cli *containerd.Client, ns, id string, labels map[string]string, opts ...oci.SpecOpts) *ctr {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), ns)
	so := append([]oci.SpecOpts{oci.WithRootFSPath(rootfs), oci.WithProcessArgs("/bin/sleep", "60")}, opts...)
	c, err := cli.NewContainer(ctx, id, containerd.WithContainerLabels(labels), containerd.WithNewSpec(so...))
	if err != nil {
		t.Fatalf("creating container %s: %v", id, err)
	}
	k := &ctr{id: id, ns: ns, c: c}
	t.Cleanup(func() { k.remove(t) })
	return k
}

// start starts the container's task.
func (k *ctr) start(t *testing.T) {
	t.Helper()
	ctx := namespaces.WithNamespace(context.Background(), k.ns)
	task, err := k.c.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatalf("creating task %s: %v", k.id, err)
	}
	exit, err := task.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatalf("starting task %s: %v", k.id, err)
	}
	k.task, k.exit = task, exit
}

// stop kills and deletes the task.
func (k *ctr) stop(t *testing.T) {
	if k.task == nil {
		return
	}
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), k.ns), 10*time.Second)
	defer cancel()
	_ = k.task.Kill(ctx, syscall.SIGKILL)
	select {
	case <-k.exit:
	case <-ctx.Done():
	}
	if _, err := k.task.Delete(ctx); err != nil {
		t.Logf("deleting task %s: %v", k.id, err)
	}
	k.task = nil
}

func (k *ctr) remove(t *testing.T) {
	k.stop(t)
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), k.ns), 10*time.Second)
	defer cancel()
	_ = k.c.Delete(ctx)
}

// startEnricher runs an Enricher against the test containerd and waits
// until it is ready.
func startEnricher(t *testing.T, cfg Config) *Enricher {
	t.Helper()
	if cfg.Socket == "" {
		cfg.Socket = daemon.socket
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin, cfg.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		_ = e.Close()
		_ = e.Close() // idempotent
	})
	select {
	case <-e.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("enricher not ready: %+v", e.Stats())
	}
	return e
}

// findProc returns the pid of the process named comm in the container's
// cgroup, polling until it appears.
func findProc(t *testing.T, id, comm string) uint32 {
	t.Helper()
	var pid uint32
	testenv.Eventually(t, 5*time.Second, func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, d := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
			if err != nil || strings.TrimSpace(string(b)) != comm {
				continue
			}
			cg, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cgroup"))
			if err == nil && strings.Contains(string(cg), id) {
				var p uint32
				fmt.Sscan(d.Name(), &p)
				pid = p
				return true
			}
		}
		return false
	}, "no %s process in container %s", comm, id)
	return pid
}

// realEvent builds an open event of a live process the way the capture
// does (identity, credentials, cgroup path from /proc/<pid>/cgroup), with
// the fields only exec carries left empty.
func realEvent(t *testing.T, pid uint32) *event.Event {
	t.Helper()
	p, err := proc.ReadProcess("", pid)
	if err != nil {
		t.Fatalf("reading process %d: %v", pid, err)
	}
	ev := &event.Event{Type: event.TypeOpenat, Timestamp: time.Now().UnixNano(), Proc: *p}
	ev.Proc.ContainerID = ""
	return ev
}

func TestEnrichRealContainer(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{})
	id := newID(t)
	labels := map[string]string{"app": "shop", "tier": "web\x1b[0m"}
	k := newContainer(t, cli, "default", id, labels,
		oci.WithProcessArgs("/bin/sh", "-c", `sh -c "sleep 60; true"; true`))
	k.start(t)

	testenv.Eventually(t, 5*time.Second, func() bool { _, ok := e.Lookup(id); return ok }, "container %s not cached", id)
	c, _ := e.Lookup(id)
	if c.ID != id[:12] || c.FullID != id || c.Name != id || c.Type != "containerd" || c.Labels["app"] != "shop" || c.Labels["tier"] != "web\x1b[0m" {
		t.Errorf("cached: %+v", c)
	}

	sleepPid := findProc(t, id, "sleep")
	ev := realEvent(t, sleepPid)
	if ev.Proc.CgroupPath != "/default/"+id {
		t.Errorf("cgroup path of a ctr container = %q, want /default/<id>", ev.Proc.CgroupPath)
	}
	e.Enrich(ev)
	if ev.Proc.ContainerID != id || ev.Container == nil || ev.Container.Name != id || ev.Container.Labels["app"] != "shop" {
		t.Fatalf("Enrich: id %q container %+v", ev.Proc.ContainerID, ev.Container)
	}
	// The start time comes with the task start event, which may be
	// processed after the create.
	testenv.Eventually(t, 10*time.Second, func() bool { c, _ := e.Lookup(id); return c.StartTS != 0 }, "no StartTS")
	if c, _ := e.Lookup(id); time.Since(time.Unix(0, c.StartTS)) > time.Minute || time.Unix(0, c.StartTS).After(time.Now()) {
		t.Errorf("StartTS %v", time.Unix(0, c.StartTS))
	}

	// Ancestry inside the container: sleep <- sh -c <- sh -c (task init) <- shim.
	tb := proc.New(proc.Config{ContainerID: e.ContainerIDOf})
	if err := tb.Seed(); err != nil {
		t.Fatal(err)
	}
	oe := realEvent(t, sleepPid)
	oe.Proc.ExePath, oe.Proc.Argv, oe.Proc.Cwd, oe.Proc.CgroupPath = "", nil, "", ""
	tb.Handle(oe)
	e.Enrich(oe)
	if oe.Proc.ContainerID != id || oe.Container == nil || oe.Proc.ExePath != "/bin/busybox" {
		t.Errorf("table+enrich: id %q exe %q", oe.Proc.ContainerID, oe.Proc.ExePath)
	}
	if len(oe.Lineage) < 3 {
		t.Fatalf("lineage too short: %d", len(oe.Lineage))
	}
	l := oe.Lineage
	if l[0].Name() != "sh" || l[1].Name() != "sh" || l[1].PID != k.task.Pid() || !strings.HasPrefix(l[2].Comm, "containerd-shim") {
		t.Errorf("lineage: %s(%d) %s(%d) %s(%d)", l[0].Name(), l[0].PID, l[1].Name(), l[1].PID, l[2].Comm, l[2].PID)
	}
	if l[0].ContainerID != id || l[1].ContainerID != id || l[2].ContainerID != "" {
		t.Errorf("lineage container ids: %q %q %q", l[0].ContainerID, l[1].ContainerID, l[2].ContainerID)
	}
	if strings.Join(l[0].Argv, " ") != `sh -c sleep 60; true` || l[0].VPID == 0 || l[0].VPID == l[0].PID {
		t.Errorf("parent argv %q vpid %d pid %d", l[0].Argv, l[0].VPID, l[0].PID)
	}

	// A host process: no container.
	he := realEvent(t, uint32(os.Getpid()))
	e.Enrich(he)
	if he.Proc.ContainerID != "" || he.Container != nil {
		t.Errorf("host process got container %q", he.Proc.ContainerID)
	}
	if s := e.Stats(); !s.Connected || s.Hits == 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNonHexIDKnownToContainerd(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{})
	id := "tripline-test-" + newID(t)[:8]
	k := newContainer(t, cli, "default", id, nil)
	k.start(t)
	pid := findProc(t, id, "sleep")
	ev := realEvent(t, pid)
	if ev.Proc.CgroupPath != "/default/"+id {
		t.Fatalf("cgroup path %q", ev.Proc.CgroupPath)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { _, ok := e.Lookup(id); return ok }, "not cached")
	e.Enrich(ev)
	if ev.Proc.ContainerID != id || ev.Container == nil || ev.Container.Name != id {
		t.Fatalf("Enrich: %q %+v", ev.Proc.ContainerID, ev.Container)
	}
	if got := e.ContainerIDOf(ev.Proc.CgroupPath); got != id {
		t.Errorf("ContainerIDOf = %q", got)
	}
	if got := e.ContainerIDOf("/process_api/fe824243f3e194cf9082bdea5f959e3b"); got != "" {
		t.Errorf("host ContainerIDOf = %q", got)
	}
}

func TestCRILabelsAndPodLabels(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{Namespaces: []string{"k8s.io"}})
	sandbox, ctrID, podUID := newID(t), newID(t), "0a1b2c3d-1111-2222-3333-444455556666"
	newContainer(t, cli, "k8s.io", sandbox, map[string]string{
		labelCRIKind: "sandbox", "app": "shop", "team": "payments",
		labelPodName: "shop-0", labelPodNamespace: "prod", labelPodUID: podUID,
	})
	testenv.Eventually(t, 5*time.Second, func() bool { _, ok := e.Lookup(sandbox); return ok }, "sandbox not cached")
	k := newContainer(t, cli, "k8s.io", ctrID, map[string]string{
		labelCRIKind: "container", labelContainerName: "web",
		labelPodName: "shop-0", labelPodNamespace: "prod", labelPodUID: podUID,
	}, oci.WithAnnotations(map[string]string{annSandboxID: sandbox}))
	k.start(t)
	pid := findProc(t, ctrID, "sleep")
	testenv.Eventually(t, 10*time.Second, func() bool { _, ok := e.Lookup(ctrID); return ok }, "not cached")
	ev := realEvent(t, pid)
	if ev.Proc.CgroupPath != "/k8s.io/"+ctrID {
		t.Errorf("cgroup path %q", ev.Proc.CgroupPath)
	}
	e.Enrich(ev)
	c := ev.Container
	if c == nil {
		t.Fatal("no container")
	}
	if c.Name != "web" || c.Type != "cri" || c.PodName != "shop-0" || c.PodNamespace != "prod" || c.PodUID != podUID {
		t.Errorf("cri fields: %+v", c)
	}
	if len(c.PodLabels) != 2 || c.PodLabels["app"] != "shop" || c.PodLabels["team"] != "payments" {
		t.Errorf("pod labels %v", c.PodLabels)
	}
	// Namespaces not followed are ignored.
	other := newID(t)
	newContainer(t, cli, "default", other, nil)
	if _, ok := e.Lookup(other); ok {
		t.Error("container of an unfollowed namespace cached")
	}
}

func TestPrivilegedCapsMounts(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{})
	priv, caps, mnt, plain := newID(t), newID(t), newID(t), newID(t)
	kp := newContainer(t, cli, "default", priv, nil, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices)
	kc := newContainer(t, cli, "default", caps, nil, oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN", "CAP_NET_ADMIN"}))
	km := newContainer(t, cli, "default", mnt, nil, oci.WithMounts([]specs.Mount{
		{Source: "/etc", Destination: "/host/etc", Type: "bind", Options: []string{"rbind", "ro"}},
	}))
	kn := newContainer(t, cli, "default", plain, nil, oci.WithUIDGID(1000, 1000))
	for _, k := range []*ctr{kp, kc, km, kn} {
		k.start(t)
	}
	want := map[string]bool{priv: true}
	seen := map[string]*event.Container{}
	deadline := time.After(10 * time.Second)
	for len(seen) < 4 {
		select {
		case ev := <-e.Events():
			if ev.Type != event.TypeContainer || ev.Container == nil {
				t.Fatalf("bad container event %+v", ev)
			}
			if _, ours := map[string]bool{priv: true, caps: true, mnt: true, plain: true}[ev.Container.FullID]; ours {
				seen[ev.Container.FullID] = ev.Container
				if ev.Proc.PID == 0 || ev.Proc.ContainerID != ev.Container.FullID {
					t.Errorf("container event proc %+v", ev.Proc)
				}
			}
		case <-deadline:
			t.Fatalf("container events: got %d of 4", len(seen))
		}
	}
	for id, c := range seen {
		if c.Privileged != want[id] {
			t.Errorf("%s: privileged = %v", id[:12], c.Privileged)
		}
	}
	has := func(l []string, s string) bool {
		for _, x := range l {
			if x == s {
				return true
			}
		}
		return false
	}
	if c := seen[caps]; !has(c.Capabilities, "CAP_SYS_ADMIN") || !has(c.Capabilities, "CAP_NET_ADMIN") || c.Privileged {
		t.Errorf("added caps: %v", c.Capabilities)
	}
	if c := seen[plain]; has(c.Capabilities, "CAP_SYS_ADMIN") || c.User != "1000" {
		t.Errorf("plain: caps %v user %q", c.Capabilities, c.User)
	}
	if c := seen[priv]; !has(c.Capabilities, "CAP_SYS_ADMIN") || c.User != "0" {
		t.Errorf("privileged: caps %v user %q", c.Capabilities, c.User)
	}
	found := false
	for _, m := range seen[mnt].Mounts {
		if m.Source == "/etc" && m.Dest == "/host/etc" && !m.RW {
			found = true
		}
	}
	if !found {
		t.Errorf("mounts: %+v", seen[mnt].Mounts)
	}
}

func TestOneContainerEventPerStart(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{})
	ids := []string{newID(t), newID(t), newID(t)}
	var ks []*ctr
	for _, id := range ids {
		k := newContainer(t, cli, "default", id, map[string]string{"n": id[:4]})
		k.start(t)
		ks = append(ks, k)
	}
	count := map[string]int{}
	drain := func() {
		for {
			select {
			case ev := <-e.Events():
				count[ev.Container.FullID]++
			default:
				return
			}
		}
	}
	testenv.Eventually(t, 10*time.Second, func() bool {
		drain()
		return count[ids[0]] >= 1 && count[ids[1]] >= 1 && count[ids[2]] >= 1
	}, "container events %v", count)
	// Restart one container's task: a second start, a second event.
	ks[0].stop(t)
	ks[0].start(t)
	testenv.Eventually(t, 10*time.Second, func() bool { drain(); return count[ids[0]] >= 2 }, "restart event %v", count)
	drain()
	if count[ids[0]] != 2 || count[ids[1]] != 1 || count[ids[2]] != 1 {
		t.Errorf("events per container: %d %d %d", count[ids[0]], count[ids[1]], count[ids[2]])
	}
	if s := e.Stats(); s.Dropped != 0 {
		t.Errorf("dropped %d", s.Dropped)
	}
}

func TestShortLivedContainer(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{DeleteGrace: 10 * time.Second})
	id := newID(t)
	k := newContainer(t, cli, "default", id, map[string]string{"job": "once"}, oci.WithProcessArgs("/bin/true"))
	startAt := time.Now()
	k.start(t)
	select {
	case <-k.exit:
	case <-time.After(5 * time.Second):
		t.Fatal("container did not exit")
	}
	if d := time.Since(startAt); d > 2*time.Second {
		t.Logf("short-lived container ran %v", d)
	}
	// (On a loaded machine the create event may still be queued.)
	testenv.Eventually(t, 10*time.Second, func() bool { _, ok := e.Lookup(id); return ok }, "not cached")
	k.remove(t) // ctr run --rm: task and container deleted at once
	testenv.Eventually(t, 5*time.Second, func() bool {
		e.mu.RLock()
		defer e.mu.RUnlock()
		ce := e.byID[id]
		return ce != nil && ce.deletedAt != 0
	}, "delete not seen")
	// A late event of the container, after it is gone from containerd.
	ev := &event.Event{Type: event.TypeExecve, Proc: event.Process{PID: 12345, CgroupPath: "/default/" + id}}
	e.Enrich(ev)
	if ev.Container == nil || ev.Container.Labels["job"] != "once" || ev.Proc.ContainerID != id {
		t.Fatalf("metadata of a deleted container lost: %+v", ev.Container)
	}
	// Its container event was emitted too.
	testenv.Eventually(t, 5*time.Second, func() bool {
		for {
			select {
			case ev := <-e.Events():
				if ev.Container.FullID == id && ev.Container.Labels["job"] == "once" {
					return true
				}
			default:
				return false
			}
		}
	}, "no container event for the short-lived container")
}

// TestMissFetch: an event of a container the cache does not hold (its
// create event not processed yet) fetches it from containerd within the
// wait.
func TestMissFetch(t *testing.T) {
	requireContainerd(t)
	cli := client(t)
	e := startEnricher(t, Config{})
	id := newID(t)
	newContainer(t, cli, "default", id, map[string]string{"k": "v"})
	testenv.Eventually(t, 5*time.Second, func() bool { _, ok := e.Lookup(id); return ok }, "not cached")
	e.mu.Lock()
	delete(e.byID, id) // forget it, as if the create event were still in flight
	e.mu.Unlock()
	before := e.Stats()
	ev := &event.Event{Type: event.TypeOpenat, Proc: event.Process{CgroupPath: "/default/" + id}}
	e.Enrich(ev)
	if ev.Container == nil || ev.Container.Labels["k"] != "v" {
		// Only on a loaded machine: the fetch took longer than the wait.
		// It still completes and replaces the placeholder.
		t.Logf("fetch slower than the wait (%+v)", e.Stats())
		testenv.Eventually(t, 10*time.Second, func() bool { _, ok := e.Lookup(id); return ok }, "miss never fetched")
		e.Enrich(ev)
		if ev.Container == nil || ev.Container.Labels["k"] != "v" {
			t.Fatalf("miss not fetched: %+v", ev.Container)
		}
	}
	s := e.Stats()
	if s.Misses < before.Misses+1 || s.Waits != before.Waits+1 || s.Fetches <= before.Fetches {
		t.Errorf("stats before %+v after %+v", before, s)
	}
	// An id containerd does not know: bounded wait, then the bare id, and
	// no second wait while remembered.
	unknown := newID(t)
	ev = &event.Event{Type: event.TypeOpenat, Proc: event.Process{CgroupPath: "/system.slice/docker-" + unknown + ".scope"}}
	t0 := time.Now()
	e.Enrich(ev)
	if d := time.Since(t0); d > time.Second {
		t.Errorf("miss waited %v", d)
	}
	if ev.Proc.ContainerID != unknown || ev.Container == nil || ev.Container.ID != unknown[:12] || ev.Container.Name != "" {
		t.Errorf("unknown container: %q %+v", ev.Proc.ContainerID, ev.Container)
	}
	w := e.Stats().Waits
	e.Enrich(ev)
	if e.Stats().Waits != w {
		t.Error("waited again for a remembered unknown id")
	}
	if _, ok := e.Lookup(unknown); ok {
		t.Error("Lookup returned a placeholder")
	}
}

// TestContainerdRestart kills containerd in the middle: a running enricher
// reports the outage once, reconnects and refills; an enricher started
// while containerd is down waits for it.
func TestContainerdRestart(t *testing.T) {
	requireContainerd(t)
	var mu sync.Mutex
	var states []bool
	e := startEnricher(t, Config{OnStateChange: func(up bool, err error) {
		mu.Lock()
		states = append(states, up)
		mu.Unlock()
	}})
	cli := client(t)
	before := newID(t)
	kb := newContainer(t, cli, "default", before, map[string]string{"when": "before"})
	kb.start(t)
	testenv.Eventually(t, 5*time.Second, func() bool { _, ok := e.Lookup(before); return ok }, "not cached")

	daemon.kill()
	t.Cleanup(func() {
		if !daemon.running() {
			_ = daemon.start()
		}
	})
	testenv.Eventually(t, 5*time.Second, func() bool { return !e.Stats().Connected }, "outage not detected")

	// Started while containerd is down.
	e2, err := New(Config{Socket: daemon.socket, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, ConnectTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e2.Run(ctx) }()
	defer func() { cancel(); <-done; e2.Close() }()
	testenv.Eventually(t, 5*time.Second, func() bool { return e2.Stats().Outages == 1 }, "down-at-start outage not reported")
	select {
	case <-e2.Ready():
		t.Fatal("ready while containerd is down")
	default:
	}
	// Lookups while down do not wait.
	ev := &event.Event{Proc: event.Process{CgroupPath: "/default/" + newID(t)}}
	e2.Enrich(ev)
	if s := e2.Stats(); s.Waits != 0 || s.Misses != 1 || ev.Container == nil {
		t.Errorf("Enrich while containerd is down: %+v", s)
	}

	if err := daemon.start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e2.Ready():
	case <-time.After(10 * time.Second):
		t.Fatalf("enricher started while down never connected: %+v", e2.Stats())
	}
	testenv.Eventually(t, 10*time.Second, func() bool { s := e.Stats(); return s.Connected && s.Reconnects == 1 }, "no reconnect: %+v", e.Stats())
	if _, ok := e2.Lookup(before); !ok {
		t.Error("cache of the late enricher not filled")
	}
	if c, ok := e.Lookup(before); !ok || c.Labels["when"] != "before" {
		t.Error("container running across the restart lost")
	}
	e.mu.RLock()
	if ce := e.byID[before]; ce == nil || ce.deletedAt != 0 {
		t.Error("container running across the restart marked deleted")
	}
	e.mu.RUnlock()

	// Events flow again after the restart.
	cli2 := client(t)
	after := newID(t)
	newContainer(t, cli2, "default", after, map[string]string{"when": "after"}).start(t)
	testenv.Eventually(t, 5*time.Second, func() bool {
		_, ok1 := e.Lookup(after)
		_, ok2 := e2.Lookup(after)
		return ok1 && ok2
	}, "container created after the restart not cached")
	s := e.Stats()
	if s.Outages != 1 {
		t.Errorf("outages %d", s.Outages)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 3 || !states[0] || states[1] || !states[2] {
		t.Errorf("state changes %v, want [true false true]", states)
	}
}
