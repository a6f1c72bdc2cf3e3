//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
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

	cfg := Config{PID: uint32(os.Getpid()), Types: []event.Type{event.TypeConnect}}
	withAndWithout(t, cfg, filter, func(t *testing.T, col *collector, withFilter bool) {
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

// withAndWithout runs fn in two subtests, "filter" and "no filter", on a
// capture of cfg with filter and on one with none.
func withAndWithout(t *testing.T, cfg Config, filter *Filter, fn func(t *testing.T, col *collector, withFilter bool)) {
	for _, withFilter := range []bool{true, false} {
		name, c := "no filter", cfg
		if withFilter {
			name, c.Filter = "filter", filter
		}
		t.Run(name, func(t *testing.T) { fn(t, startCapture(t, c), withFilter) })
	}
}

// mountNSTools returns, for a privileged test of the container terms, the
// host's mount namespace and unshare(1), to run a process in another.
func mountNSTools(t *testing.T) (host uint64, unshare string) {
	t.Helper()
	testenv.RequireRoot(t)
	host, err := HostMntNS()
	if err != nil {
		t.Fatal(err)
	}
	unshare, err = exec.LookPath("unshare")
	testenv.Require(t, err == nil, "unshare(1) (util-linux)")
	return host, unshare
}

// TestKernelFilterHostDrop checks that the events of a container-only
// type are dropped for a process in the host's mount namespace and kept
// for one in a mount namespace of its own (unshare -m), and that exec,
// fork and exit of the host process still arrive.
func TestKernelFilterHostDrop(t *testing.T) {
	host, unshare := mountNSTools(t)
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

// TestKernelFilterConnectReference compares the BPF socket filter with its
// reference semantics (rules.KernelFilter.Passes) on real loopback
// connects: TCP (accepted and refused) and UDP, IPv4, IPv6 and
// IPv4-mapped, to addresses across 127.0.0.0/8, under random filters. The
// events of an unfiltered run are what the reference decides on.
func TestKernelFilterConnectReference(t *testing.T) {
	testenv.RequireRoot(t)
	host, err := HostMntNS()
	if err != nil {
		t.Fatal(err)
	}
	v4 := listen(t, "tcp4", "127.0.0.1:0")
	v6 := listen(t, "tcp6", "[::1]:0")
	closed := closedPort(t)
	marker := closedPort(t) // a UDP connect to it ends each run
	for marker == closed {
		marker = closedPort(t)
	}
	ports := []uint16{v4, v6, closed}
	addrs := []string{"127.0.0.1", "127.0.0.2", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::ffff:127.0.0.9"}
	var list []string
	for _, network := range []string{"tcp", "udp"} {
		for _, a := range addrs {
			for _, p := range ports {
				list = append(list, network+","+netip.AddrPortFrom(netip.MustParseAddr(a), p).String())
			}
		}
	}
	markerOp := "udp," + netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), marker).String()
	list = append(list, markerOp)
	cfg := Config{PID: uint32(os.Getpid()), Types: []event.Type{event.TypeConnect}}
	key := func(e *event.Event) string {
		c := &e.Connect
		return fmt.Sprint(c.Family, c.SockType, c.RemoteAddr, c.RemotePort, e.Res)
	}
	isMarker := func(e *event.Event) bool { return e.Connect.RemotePort == marker }
	// The same connects, less the marker, from a new network namespace
	// first: its loopback is down, so each fails before its socket takes
	// the address (ENETUNREACH, EADDRNOTAVAIL for ::1) and the filter reads
	// the caller's sockaddr.
	unreachable := strings.Join(list[:len(list)-1], ";")
	run := func(t *testing.T, f *Filter) map[string]*event.Event {
		c := cfg
		c.Filter = f
		col := startCapture(t, c)
		pidNet := helperWith(t, newNetNS(), "connectlist", unreachable)
		pid := helper(t, "connectlist", strings.Join(list, ";"))
		col.wait(t, "the marker connect", func(e *event.Event) bool { return e.Proc.PID == pid && isMarker(e) })
		col.mu.Lock()
		defer col.mu.Unlock()
		out := map[string]*event.Event{}
		for _, e := range col.evs {
			if (e.Proc.PID == pid || e.Proc.PID == pidNet) && e.Type == event.TypeConnect && !isMarker(e) {
				out[key(e)] = e
			}
		}
		return out
	}
	all := run(t, nil)
	noRoute := 0
	for _, e := range all {
		if (e.Res == -int64(unix.ENETUNREACH) || e.Res == -int64(unix.EADDRNOTAVAIL)) && e.Connect.RemotePort != 0 {
			noRoute++
		}
	}
	if len(all) < 2*(len(list)-1) || noRoute < len(list)-1 {
		t.Fatalf("%d distinct connects without a filter (%d without a route, with their port), want %d (%d)", len(all), noRoute, 2*(len(list)-1), len(list)-1)
	}

	rng := rand.New(rand.NewPCG(7, 11))
	prefixes := []string{"127.0.0.1/32", "127.0.0.0/24", "127.1.0.0/16", "127.0.0.0/8", "0.0.0.0/0", "::1/128", "::/0", "127.0.0.9/32"}
	randPrefixes := func() []netip.Prefix {
		if rng.IntN(2) == 0 {
			return nil
		}
		var out []netip.Prefix
		for range 1 + rng.IntN(2) {
			out = append(out, netip.MustParsePrefix(prefixes[rng.IntN(len(prefixes))]))
		}
		return out
	}
	for round := range 6 {
		var kt []SockTerm
		var rt []rules.SockTerm
		for range 1 + rng.IntN(4) {
			tm := SockTerm{Families: uint8(1 + rng.IntN(15)), Results: uint8(1 + rng.IntN(7)), Container: rng.IntN(4) == 0,
				Addrs: randPrefixes()}
			if rng.IntN(2) == 0 {
				tm.NotAddrs = randPrefixes()
			}
			if rng.IntN(2) == 0 {
				p := ports[rng.IntN(len(ports))]
				tm.Ports = []PortRange{{p, p}}
				if rng.IntN(2) == 0 {
					tm.Ports = append(tm.Ports, PortRange{0, min(v4, v6) - 1})
				}
			}
			r := rules.SockTerm{Families: rules.Families(tm.Families), Results: rules.Results(tm.Results), Container: tm.Container,
				Addrs: tm.Addrs, NotAddrs: tm.NotAddrs}
			for _, p := range tm.Ports {
				r.Ports = append(r.Ports, rules.PortRange{Lo: p.Lo, Hi: p.Hi})
			}
			kt, rt = append(kt, tm), append(rt, r)
		}
		// The marker passes every filter.
		kt = append(kt, SockTerm{Families: SockFamInet, Results: SockResOK, Ports: []PortRange{{marker, marker}}, Addrs: ip4("127.0.0.1/32")})
		ref := &rules.KernelFilter{Sock: []rules.SockFilter{{Type: event.TypeConnect, Terms: rt}}}
		t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
			got := run(t, &Filter{HostMntNS: host, Sock: []SockFilter{{Type: event.TypeConnect, Terms: kt}}})
			passed := 0
			for k, e := range all {
				want := ref.Passes(e, true)
				if _, sent := got[k]; sent != want {
					t.Errorf("connect %s res=%d: sent=%v, reference says %v (terms %+v)", k, e.Res, sent, want, rt)
				}
				if want {
					passed++
				}
			}
			t.Logf("%d of %d connects pass", passed, len(all))
		})
	}
}

func ip4(s string) []netip.Prefix { return []netip.Prefix{netip.MustParsePrefix(s)} }
