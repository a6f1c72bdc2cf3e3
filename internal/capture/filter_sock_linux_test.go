//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

// listen opens a loopback TCP listener that accepts and closes; it
// returns the port.
func listen(t *testing.T, network, addr string) uint16 {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	acceptAndClose(l)
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// closedPort returns a loopback port nothing listens on (connects are
// refused).
func closedPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	return p
}

// TestKernelFilterConnect checks with real loopback connects that the
// socket filter drops (and counts) the connects no term lets pass and
// sends the others: ports, outcomes, address sets and exclusions,
// IPv4-mapped IPv6 addresses and the container condition for a process in
// the host's mount namespace.
func TestKernelFilterConnect(t *testing.T) {
	testenv.RequireRoot(t)
	host, err := HostMntNS()
	if err != nil {
		t.Fatal(err)
	}
	watched := listen(t, "tcp4", "127.0.0.1:0")
	other := listen(t, "tcp4", "127.0.0.1:0")
	v6 := listen(t, "tcp6", "[::1]:0")
	closed := closedPort(t)
	sock := filepath.Join(realDir(t), "s.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close() })
	acceptAndClose(ul)

	ip := func(a string) []netip.Prefix {
		p := netip.MustParsePrefix(a)
		return []netip.Prefix{p}
	}
	const famIP = SockFamInet | SockFamInet6
	const resAll = SockResOK | SockResInProgress | SockResFailed
	filter := &Filter{HostMntNS: host, Sock: []SockFilter{{Type: event.TypeConnect, Terms: []SockTerm{
		{Families: famIP, Results: SockResOK, Ports: []PortRange{{watched, watched}}},
		{Families: SockFamInet, Results: SockResFailed, Addrs: ip("127.0.0.3/32")},
		{Families: SockFamInet6, Results: SockResFailed, Addrs: ip("127.0.0.5/32")}, // mapped addresses are IPv4
		{Families: famIP, Results: resAll, NotAddrs: append(ip("127.0.0.0/8"), ip("::1/128")...)},
		{Families: SockFamInet6, Results: SockResOK, Addrs: ip("::1/128"), Ports: []PortRange{{v6 - 1, v6}}},
		{Families: SockFamUnix, Results: resAll, Container: true}, // the helper is on the host
	}}}}
	at := func(a string, p uint16) string { return netip.AddrPortFrom(netip.MustParseAddr(a), p).String() }
	ops := []struct {
		network, addr string
		pass          bool
	}{
		{"tcp", at("127.0.0.1", watched), true},       // watched port, success
		{"tcp", at("127.0.0.1", other), false},        // another port
		{"tcp", at("127.0.0.3", closed), true},        // refused, watched address
		{"tcp", at("127.0.0.4", closed), false},       // refused elsewhere
		{"tcp", at("::ffff:127.0.0.5", closed), true}, // AF_INET6, refused, mapped watched address
		{"tcp", at("::ffff:127.0.0.6", closed), false},
		{"tcp", at("::ffff:127.0.0.1", watched), true}, // AF_INET6 to the watched port
		{"tcp", at("::1", v6), true},                   // IPv6 address and port
		{"tcp", at("::1", other), false},               // refused: the v6 term wants success
		{"unix", sock, false},                          // container only
	}
	var list []string
	for _, o := range ops {
		list = append(list, o.network+","+o.addr)
	}
	list = append(list, "tcp,"+at("127.0.0.1", watched)) // the marker: arrives after the others

	for _, withFilter := range []bool{true, false} {
		name := "filter"
		cfg := Config{PID: uint32(os.Getpid()), Types: []event.Type{event.TypeConnect}}
		if withFilter {
			cfg.Filter = filter
		} else {
			name = "no filter"
		}
		t.Run(name, func(t *testing.T) {
			col := startCapture(t, cfg)
			pid := helper(t, "connectlist", strings.Join(list, ";"))
			remote := func(e *event.Event) string {
				if e.Connect.Family == event.AFUnix {
					return e.Connect.UnixPath
				}
				return netip.AddrPortFrom(e.Connect.RemoteAddr, e.Connect.RemotePort).String()
			}
			testenv.Eventually(t, 10*time.Second, func() bool {
				col.mu.Lock()
				defer col.mu.Unlock()
				n := 0
				for _, e := range col.evs {
					if e.Proc.PID == pid && e.Type == event.TypeConnect && remote(e) == at("127.0.0.1", watched) && e.Connect.Family == event.AFInet {
						n++
					}
				}
				return n == 2
			}, "the helper's last connect did not arrive")
			dropped := 0
			for _, o := range ops {
				got := col.find(func(e *event.Event) bool {
					return e.Proc.PID == pid && e.Type == event.TypeConnect && remote(e) == o.addr
				}) != nil
				want := o.pass || !withFilter
				if got != want {
					t.Errorf("connect %s %s: sent=%v, want %v", o.network, o.addr, got, want)
				}
				if !want {
					dropped++
				}
			}
			st := col.c.Stats()
			if withFilter && st.FilteredByType[event.TypeConnect] < uint64(dropped) {
				t.Errorf("FilteredByType[connect]=%d, want at least %d", st.FilteredByType[event.TypeConnect], dropped)
			}
			if !withFilter && st.Filtered != 0 {
				t.Errorf("Filtered=%d without a filter", st.Filtered)
			}
		})
	}
}

// TestKernelFilterHostDrop checks that the events of a container-only
// type are dropped for a process in the host's mount namespace and kept
// for one in a mount namespace of its own (unshare -m), and that exec,
// fork and exit of the host process still arrive.
func TestKernelFilterHostDrop(t *testing.T) {
	testenv.RequireRoot(t)
	host, err := HostMntNS()
	if err != nil {
		t.Fatal(err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare(1)")
	}
	mkdirs := []event.Type{event.TypeMkdir, event.TypeMkdirat}
	types := append(Lifecycle(), mkdirs...)
	dir := realDir(t)
	for _, withFilter := range []bool{true, false} {
		name := "filter"
		cfg := Config{PID: uint32(os.Getpid()), Types: types}
		if withFilter {
			cfg.Filter = &Filter{HostDrop: mkdirs, HostMntNS: host}
		} else {
			name = "no filter"
		}
		t.Run(name, func(t *testing.T) {
			col := startCapture(t, cfg)
			hostDir := filepath.Join(dir, name+"-host")
			nsDir := filepath.Join(dir, name+"-ns")
			run := func(args ...string) uint32 {
				cmd := exec.Command(args[0], args[1:]...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%v: %v\n%s", args, err, out)
				}
				return uint32(cmd.ProcessState.Pid())
			}
			hostPid := run("mkdir", hostDir)
			nsPid := run(unshare, "-m", "mkdir", nsDir)
			mkdirOf := func(pid uint32, path string) func(*event.Event) bool {
				return func(e *event.Event) bool {
					return e.Proc.PID == pid && (e.Type == event.TypeMkdir || e.Type == event.TypeMkdirat) && e.Sys.Path == path
				}
			}
			col.wait(t, "mkdir in a new mount namespace", mkdirOf(nsPid, nsDir))
			col.wait(t, "exit of the host process", func(e *event.Event) bool { return e.Type == event.TypeProcexit && e.Proc.PID == hostPid })
			col.wait(t, "exec of the host process", func(e *event.Event) bool {
				return e.Type.Class() == event.ClassExec && e.Proc.PID == hostPid && strings.HasSuffix(e.Proc.ExePath, "/mkdir")
			})
			// The namespace's process exits after the host's: its mkdir
			// came after the host's in the ring.
			col.wait(t, "exit of the namespace's process", func(e *event.Event) bool { return e.Type == event.TypeProcexit && e.Proc.PID == nsPid })
			got := col.find(mkdirOf(hostPid, hostDir)) != nil
			if got == withFilter {
				t.Errorf("host process's mkdir sent=%v with filter=%v", got, withFilter)
			}
			st := col.c.Stats()
			if n := st.FilteredByType[event.TypeMkdir] + st.FilteredByType[event.TypeMkdirat]; withFilter && n == 0 {
				t.Errorf("no mkdir counted as filtered")
			}
		})
	}
}

// TestSockFilterInvalid checks that New refuses what the kernel maps
// cannot hold or must never drop.
func TestSockFilterInvalid(t *testing.T) {
	testenv.RequireRoot(t)
	many := make([]SockTerm, FilterSockTerms+1)
	for i := range many {
		many[i] = SockTerm{Families: SockFamInet, Results: SockResOK, Ports: []PortRange{{uint16(i), uint16(i)}}}
	}
	for _, tc := range []struct {
		name string
		f    Filter
	}{
		{"exec dropped for host processes", Filter{HostDrop: []event.Type{event.TypeExecve}, HostMntNS: 1}},
		{"exit dropped for host processes", Filter{HostDrop: []event.Type{event.TypeProcexit}, HostMntNS: 1}},
		{"socket filter on open", Filter{Sock: []SockFilter{{Type: event.TypeOpenat}}}},
		{"too many terms", Filter{Sock: []SockFilter{{Type: event.TypeConnect, Terms: many}}}},
	} {
		c, err := New(Config{PID: uint32(os.Getpid()), Filter: &tc.f})
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, ErrFilter) {
			t.Errorf("%s: err=%v, want ErrFilter", tc.name, err)
		}
	}
}
