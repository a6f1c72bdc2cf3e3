package rules

import (
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// kfRuleSets are the rule files the kernel filter is checked against.
var kfRuleSets = map[string][]string{
	"defaults": {"../../rules"},
	"upstream": {filepath.Join(upstream, "falco_rules.yaml"), filepath.Join(upstream, "falco-incubating_rules.yaml")},
	"facts":    {"testdata/kfilter_rules.yaml"},
	"seed":     {"testdata/seed_macros.yaml", filepath.Join(seeds, "checkpoint.yaml"), filepath.Join(seeds, "runtime-monitoring.yaml")},
}

// TestKernelFilterSound is the property that makes the kernel filter safe:
// for generated open events built from the paths, names and programs the
// rule files mention (and random ones), every event a rule matches in
// userspace passes the filter.
func TestKernelFilterSound(t *testing.T) {
	for name, paths := range kfRuleSets {
		t.Run(name, func(t *testing.T) {
			rs, _, err := LoadFiles(paths, Options{Captured: sensorTypes})
			if err != nil {
				t.Fatal(err)
			}
			kf := rs.KernelFilter()
			ev := rs.NewEvaluator()
			words := ruleWords(rs)
			rng := rand.New(rand.NewPCG(11, uint64(len(words))))
			addrs, ports := netWords(words)
			others := otherTypes(rs)
			// Per kind of event: open, connect, another type of the rules.
			var matched, dropped [3]int
			var fileMatched, fileDropped int // of the file-change types
			var dst []*Rule
			for i := range 300000 {
				var e *event.Event
				kind := i % 3
				switch kind {
				case 0:
					e = randomOpen(rng, words)
				case 1:
					e = randomConnect(rng, words, addrs, ports)
				default:
					if len(others) == 0 {
						continue
					}
					e = randomOther(rng, words, addrs, ports, others)
				}
				// Container processes are never in the host's mount
				// namespace; host ones may be in it or in another.
				hostMnt := e.Container == nil && rng.IntN(4) != 0
				dst = ev.Match(e, dst[:0])
				pass := kf.Passes(e, hostMnt)
				file := e.Type.Class() == event.ClassFile
				if !pass {
					dropped[kind]++
					if file {
						fileDropped++
					}
				}
				if len(dst) == 0 {
					continue
				}
				matched[kind]++
				if file {
					fileMatched++
				}
				// Each matching rule's own terms must let it pass, not just
				// some other rule's.
				for _, r := range dst {
					if !pass || !ruleOnly(kf, r.Name).Passes(e, hostMnt) {
						t.Fatalf("rule %q matches %s %q flags=%#o res=%d proc=%q connect=%+v paths=%q args=%#o container=%v hostmnt=%v, but the kernel filter drops it",
							r.Name, e.Type, e.Open.Path, e.Open.Flags, e.Res, e.Proc.Comm, e.Connect,
							[]string{e.Sys.RawPath, e.Sys.Path, e.Sys.RawPath2, e.Sys.Path2}, e.Sys.Args, e.Container != nil, hostMnt)
					}
				}
			}
			t.Logf("matched %v, dropped %v (open, connect, other)", matched, dropped)
			if matched[0] < 500 || (name != "seed" && dropped[0] < 1000) || (name == "facts" && matched[0] < 5000) {
				t.Errorf("weak test: only %d opens matched and %d were dropped", matched[0], dropped[0])
			}
			if name != "seed" && (matched[1] < 300 || dropped[1] < 1000) {
				t.Errorf("weak test: only %d connects matched and %d were dropped", matched[1], dropped[1])
			}
			if name != "seed" && len(kf.Host.Types) > 0 && (matched[2] < 100 || dropped[2] < 1000) {
				t.Errorf("weak test: only %d events of other types matched and %d were dropped", matched[2], dropped[2])
			}
			t.Logf("file-change types: matched %d, dropped %d", fileMatched, fileDropped)
			if fileNameTerms(kf) && (fileMatched < 100 || fileDropped < 1000) {
				t.Errorf("weak test: only %d file changes matched and %d were dropped", fileMatched, fileDropped)
			}
		})
	}
}

// fileNameTerms tells whether kf filters a file-change type on names.
func fileNameTerms(kf *KernelFilter) bool {
	for _, ff := range kf.Files {
		for _, tm := range ff.Terms {
			if tm.Names[0] != nil || tm.Names[1] != nil || tm.Flags != 0 {
				return true
			}
		}
	}
	return false
}

// ruleOnly is kf restricted to the terms of one rule.
func ruleOnly(kf *KernelFilter, rule string) *KernelFilter {
	out := &KernelFilter{Host: kf.Host}
	for _, sf := range kf.Sock {
		sf.Terms = termsOf(sf.Terms, rule, func(tm SockTerm) string { return tm.Rule })
		out.Sock = append(out.Sock, sf)
	}
	for _, ff := range kf.Files {
		ff.Terms = termsOf(ff.Terms, rule, func(tm FileTerm) string { return tm.Rule })
		out.Files = append(out.Files, ff)
	}
	for _, tf := range kf.Types {
		tf.Terms = termsOf(tf.Terms, rule, func(tm OpenTerm) string { return tm.Rule })
		out.Types = append(out.Types, tf)
	}
	return out
}

// termsOf are the terms of rule.
func termsOf[T any](terms []T, rule string, of func(T) string) []T {
	return slices.DeleteFunc(slices.Clone(terms), func(tm T) bool { return of(tm) != rule })
}

// ruleWords collects the string values of every check of the rules.
func ruleWords(rs *Ruleset) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs.Rules() {
		if r.cond == nil {
			continue
		}
		walkChecks(r.cond, func(c *checkNode) {
			for _, v := range c.vals {
				if !seen[v.text] && v.text != "" {
					seen[v.text] = true
					out = append(out, v.text)
				}
			}
		})
	}
	return out
}

var kfProcs = []string{"python3", "bash", "nginx", "cat", "evil", "vi", "sh", "node"}

// randomOpen builds an open event from the rule words: the paths as
// written, extended, cut, combined as directory and file name.
func randomOpen(rng *rand.Rand, words []string) *event.Event {
	w := func() string { return words[rng.IntN(len(words))] }
	var path string
	switch rng.IntN(9) {
	case 0:
		path = w()
	case 1:
		path = w() + "/" + w()
	case 2:
		path = w() + w()
	case 3:
		path = "/home/alice/" + w()
	case 4:
		s := w()
		path = s[:rng.IntN(len(s)+1)]
	case 5:
		path = filepath.Join("/", w(), w())
	case 6:
		path = "/tmp/" + strings.Repeat("d/", rng.IntN(4)) + "f.txt"
	case 7:
		path = "/"
	default:
		path = filepath.Join(w(), ".."+"/"+w())
	}
	types := event.ClassOpen.Types()
	e := &event.Event{Type: types[rng.IntN(len(types))], Res: 3}
	flags := []uint32{0, 1, 2, 3, 0o1101, 0o102, 0o200000, 0o1000 | 1, 0o100 | 0o2}
	e.Open = event.Open{Path: path, RawPath: path, Flags: flags[rng.IntN(len(flags))], Mode: []uint32{0o644, 0o755}[rng.IntN(2)]}
	if rng.IntN(2) == 0 { // failed: ENOENT, EACCES, EPERM, ELOOP, or an errno without a name
		e.Res = []int64{-2, -13, -1, -40, -999}[rng.IntN(5)]
	}
	comm := kfProcs[rng.IntN(len(kfProcs))]
	if rng.IntN(4) == 0 {
		comm = w()
	}
	e.Proc = *testProc(comm, "/usr/bin/"+comm, 4242, comm, w())
	e.Proc.Cwd = "/root"
	if rng.IntN(2) == 0 {
		e.Container = testContainer
		e.Proc.ContainerID = testContainer.FullID
	}
	e.SetLineage([]*event.Process{testProc(kfProcs[rng.IntN(len(kfProcs))], "/usr/bin/bash", 900, "bash")})
	return e
}

// netWords are the addresses (in and at the edges of the networks) and
// ports the rule words name, with ordinary ones.
func netWords(words []string) (addrs []netip.Addr, ports []uint16) {
	for _, s := range []string{"127.0.0.1", "10.1.2.3", "8.8.8.8", "169.254.169.254", "0.0.0.0", "192.168.1.1",
		"::1", "::", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:8.8.8.8", "::ffff:1.2.3.4", "fd00:ec2::254"} {
		addrs = append(addrs, netip.MustParseAddr(s))
	}
	ports = []uint16{0, 1, 22, 53, 80, 443, 1023, 1024, 4444, 6443, 65535}
	for _, w := range words {
		if p, err := parseNet(w); err == nil {
			a := p.Addr()
			addrs = append(addrs, a, a.Prev(), a.Next())
			last := a
			for range min(a.BitLen()-p.Bits(), 24) {
				last = last.Next()
			}
			addrs = append(addrs, last)
		}
		if n, err := strconv.Atoi(w); err == nil && n >= 0 && n <= 65535 {
			ports = append(ports, uint16(n), uint16(max(n-1, 0)), uint16(min(n+1, 65535)))
		}
	}
	var valid []netip.Addr
	for _, a := range addrs {
		if a.IsValid() {
			valid = append(valid, a)
		}
	}
	return valid, ports
}

// randomSock fills c with a random socket: family, ends and protocol.
func randomSock(rng *rand.Rand, words []string, addrs []netip.Addr, ports []uint16, c *event.Connect) {
	addr := func(v6 bool) netip.Addr {
		a := addrs[rng.IntN(len(addrs))]
		switch {
		case v6 && a.Is4():
			return netip.AddrFrom16(a.As16()) // IPv4-mapped
		case !v6 && !a.Unmap().Is4():
			return netip.AddrFrom4([4]byte{10, 0, 0, byte(rng.IntN(256))})
		case !v6:
			return a.Unmap()
		}
		return a
	}
	*c = event.Connect{FD: int32(rng.IntN(8)), SockType: uint16(1 + rng.IntN(3))}
	if rng.IntN(2) == 0 {
		c.Proto = []uint8{event.ProtoTCP, event.ProtoUDP}[rng.IntN(2)]
	}
	switch rng.IntN(6) {
	case 0, 1:
		c.Family = event.AFInet
	case 2, 3:
		c.Family = event.AFInet6
	case 4:
		c.Family = event.AFUnix
		c.UnixPath = []string{"/run/containerd/containerd.sock", "/var/run/docker.sock", "@abstract", ""}[rng.IntN(4)]
		if rng.IntN(3) == 0 {
			c.UnixPath = words[rng.IntN(len(words))]
		}
		return
	default:
		c.Family = []uint16{0, 16, 17}[rng.IntN(3)]
		return
	}
	v6 := c.Family == event.AFInet6
	c.RemoteAddr, c.LocalAddr = addr(v6), addr(v6)
	c.RemotePort, c.LocalPort = ports[rng.IntN(len(ports))], ports[rng.IntN(len(ports))]
}

// randomProc gives e a process, a parent and, half the time, a container.
func randomProc(rng *rand.Rand, words []string, e *event.Event) {
	comm := kfProcs[rng.IntN(len(kfProcs))]
	if rng.IntN(4) == 0 {
		comm = words[rng.IntN(len(words))]
	}
	e.Proc = *testProc(comm, "/usr/bin/"+comm, 4242, comm, words[rng.IntN(len(words))])
	e.Proc.Cwd = "/root"
	if rng.IntN(2) == 0 {
		e.Container = testContainer
		e.Proc.ContainerID = testContainer.FullID
	}
	e.SetLineage([]*event.Process{testProc(kfProcs[rng.IntN(len(kfProcs))], "/usr/bin/bash", 900, "bash")})
}

var kfResults = []int64{0, 0, 3, -115, -111, -2, -13, -22}

// randomConnect builds a connect event from the rule words: families,
// addresses in and around the networks named, ports, outcomes.
func randomConnect(rng *rand.Rand, words []string, addrs []netip.Addr, ports []uint16) *event.Event {
	e := &event.Event{Type: event.TypeConnect, Res: kfResults[rng.IntN(len(kfResults))]}
	randomSock(rng, words, addrs, ports, &e.Connect)
	randomProc(rng, words, e)
	return e
}

// otherTypes are the rule types that are neither open nor connect nor
// the process lifecycle.
func otherTypes(rs *Ruleset) []event.Type {
	var out []event.Type
	for _, t := range rs.types {
		switch t.Class() {
		case event.ClassOpen, event.ClassConnect, event.ClassFork, event.ClassExit, event.ClassContainer:
			continue
		}
		out = append(out, t)
	}
	return out
}

// randomOther builds an event of one of types: a path, a socket or file
// fd, arguments and an outcome.
func randomOther(rng *rand.Rand, words []string, addrs []netip.Addr, ports []uint16, types []event.Type) *event.Event {
	e := &event.Event{Type: types[rng.IntN(len(types))], Res: kfResults[rng.IntN(len(kfResults))]}
	s := &e.Sys
	s.RawPath, s.Path = randomRawPath(rng, words)
	if rng.IntN(2) == 0 {
		s.RawPath2, s.Path2 = randomRawPath(rng, words)
	}
	// Small numbers (fds, dirfds), modes with and without the setuid
	// and setgid bits, *at flags, any bits.
	args := []uint64{0, 1, 2, 3, 0o644, 0o755, 0o4755, 0o2750, 0o6777, 0o1777, 0x100, 0x200, 0x400}
	for i := range s.Args {
		s.Args[i] = args[rng.IntN(len(args))]
		if rng.IntN(8) == 0 {
			s.Args[i] = rng.Uint64()
		}
	}
	switch rng.IntN(3) {
	case 0:
		s.FDKind = event.FDSocket
		randomSock(rng, words, addrs, ports, &e.Connect)
		s.FD = e.Connect.FD
	case 1:
		s.FDKind, s.FD, s.FDPath = event.FDFile, int32(rng.IntN(8)), s.Path
	}
	randomProc(rng, words, e)
	return e
}

// randomRawPath builds a path as a syscall is passed it, from the rule
// words (whole, as the file name under a directory, cut, with what
// resolving removes: a trailing '/', "." or ".."), and the path userspace
// resolves it to from the working directory /root, as the decoder does.
func randomRawPath(rng *rand.Rand, words []string) (raw, resolved string) {
	w := func() string { return words[rng.IntN(len(words))] }
	switch rng.IntN(10) {
	case 0, 1:
		raw = w()
	case 2:
		raw = "dir/" + baseName(w())
	case 3:
		raw = "/home/alice/" + baseName(w())
	case 4:
		s := w()
		raw = s[:rng.IntN(len(s)+1)]
	case 5:
		raw = w() + []string{"/", "/.", "/..", "//"}[rng.IntN(4)]
	case 6:
		raw = filepath.Join(w(), "..", baseName(w()))
	case 7:
		raw = "/tmp/" + strings.Repeat("x", rng.IntN(80))
	case 8:
		raw = ""
	default:
		raw = "./" + baseName(w())
	}
	switch {
	case raw == "":
	case raw[0] == '/':
		resolved = filepath.Clean(raw)
	default:
		resolved = filepath.Join("/root", raw)
	}
	return raw, resolved
}

// TestKernelFilterDefaults pins what the default rules push down: writes
// and reads outside the watched places are dropped, the watched
// places pass.
func TestKernelFilterDefaults(t *testing.T) {
	rs := loadDefaults(t)
	kf := rs.KernelFilter()
	for _, tc := range []struct {
		typ   event.Type
		path  string
		flags uint32
		res   int64
		want  bool
	}{
		{event.TypeOpenat, "/tmp/x", 0o1101, 3, false},
		{event.TypeOpenat, "/tmp/x", 0, 3, false},
		{event.TypeOpenat, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3, false},
		{event.TypeOpenat, "/home/a/.aws/credentials", 0, 3, true},
		{event.TypeOpenat, "/home/a/.config/gcloud/legacy_credentials/me/adc.json", 0, 3, true},
		{event.TypeOpenat, "/home/a/.ssh/id_rsa", 0, 3, true},
		{event.TypeOpenat, "/proc/1/environ", 0, 3, true},
		{event.TypeCreat, "/tmp/x", 0o1101, 3, false},
		{event.TypeOpenat, "/etc/passwd", 1, 3, true},
		{event.TypeOpenat, "/home/a/.ssh/authorized_keys", 2, 3, true},
		{event.TypeOpenat, "/home/a/.bashrc", 1, 3, true},
		// The failure rule wants EACCES or EPERM; failed opens are not
		// filtered on paths.
		{event.TypeOpenat, "/tmp/missing", 0, -2, false},
		{event.TypeOpenat, "/tmp/x", 0, -13, true},
		{event.TypeOpenat, "/tmp/x", 0o1101, -1, true},
		{event.TypeOpenat, "/etc/shadow", 0, -2, false},
		{event.TypeOpenat, "/etc/shadow", 0, -13, true},
		{event.TypeOpenat, "/etc/shadow", 0, 3, true},
	} {
		e := &event.Event{Type: tc.typ, Res: tc.res, Open: event.Open{Path: tc.path, Flags: tc.flags}}
		if got := kf.Pass(e); got != tc.want {
			t.Errorf("%s %s flags=%#o res=%d: pass=%v, want %v", tc.typ, tc.path, tc.flags, tc.res, got, tc.want)
		}
	}
}

// TestKernelFilterConnectDefaults pins what the default rules push down
// for connect and for host processes.
func TestKernelFilterConnectDefaults(t *testing.T) {
	rs := loadDefaults(t)
	kf := rs.KernelFilter()
	ip := func(s string, port uint16) event.Connect {
		a := netip.MustParseAddr(s)
		fam := uint16(event.AFInet)
		if a.Is6() {
			fam = event.AFInet6
		}
		return event.Connect{FD: 3, Family: fam, RemoteAddr: a, RemotePort: port}
	}
	unix := event.Connect{FD: 3, Family: event.AFUnix, UnixPath: "/run/containerd/containerd.sock"}
	for _, tc := range []struct {
		name    string
		c       event.Connect
		res     int64
		hostMnt bool
		want    bool
	}{
		{"loopback", ip("127.0.0.1", 8080), 0, true, false},
		{"loopback in a container", ip("127.0.0.1", 8080), 0, false, true}, // the K8S API rule: any address
		{"v6 loopback", ip("::1", 443), -115, true, false},
		{"mapped loopback", ip("::ffff:127.0.0.1", 443), 0, true, false},
		{"public", ip("8.8.8.8", 443), 0, true, true},
		{"public refused", ip("8.8.8.8", 443), -111, true, false},
		{"public in progress", ip("2001:db8::1", 443), -115, true, true},
		{"private", ip("10.1.2.3", 5555), 0, true, true}, // shells: any non-local address
		{"metadata from the host", ip("169.254.169.254", 80), 0, true, true},
		{"runtime socket from the host", unix, 0, true, false},
		{"runtime socket from a container", unix, 0, false, true},
	} {
		e := &event.Event{Type: event.TypeConnect, Res: tc.res, Connect: tc.c}
		if got := kf.Passes(e, tc.hostMnt); got != tc.want {
			t.Errorf("%s: pass=%v, want %v", tc.name, got, tc.want)
		}
	}
	for _, typ := range []event.Type{event.TypeDup2, event.TypeListen, event.TypeMount, event.TypeBpf} {
		e := &event.Event{Type: typ}
		if kf.Passes(e, true) || !kf.Passes(e, false) {
			t.Errorf("%s: host processes' events should be dropped, others kept", typ)
		}
	}
	for _, typ := range []event.Type{event.TypeExecve, event.TypeClone, event.TypeProcexit, event.TypeSymlink, event.TypePtrace} {
		if slices.Contains(kf.Host.Types, typ) {
			t.Errorf("%s dropped for host processes", typ)
		}
	}
}

// TestKernelFilterStdFDs checks that a rule reading proc.stdin/stdout/
// stderr keeps every connect and every host process's event: the process
// table tracks those fds from them.
func TestKernelFilterStdFDs(t *testing.T) {
	src := `
- rule: in container
  desc: x
  condition: evt.type in (connect, dup2) and container.id != host and fd.sport = 4444
  output: x
  priority: WARNING
- rule: shell with a socket
  desc: x
  condition: evt.type = execve and proc.stdin.type in (ipv4, ipv6)
  output: x
  priority: WARNING
- rule: shadow read
  desc: x
  condition: evt.type = openat and fd.name = /etc/shadow
  output: x
  priority: WARNING
`
	for _, std := range []bool{false, true} {
		s := src
		if !std {
			s = strings.ReplaceAll(s, "proc.stdin.type", "proc.name")
		}
		rs, _, err := Load([]Source{{Name: "x.yaml", Data: []byte(s)}}, Options{Captured: sensorTypes})
		if err != nil {
			t.Fatal(err)
		}
		kf := rs.KernelFilter()
		if len(kf.Sock) != 1 || kf.Sock[0].PassAll != std || (len(kf.Host.Types) == 0) != std {
			t.Errorf("std=%v: sock %+v host %+v", std, kf.Sock, kf.Host)
		}
		if len(kf.Types) != 1 || kf.Types[0].PassAll != std {
			t.Errorf("std=%v: opens %+v", std, kf.Types)
		}
	}
}

// TestKernelFilterErrnos pins the errnos derived from evt.res and
// evt.rawres (testdata/kfilter_rules.yaml).
func TestKernelFilterErrnos(t *testing.T) {
	rs, _, err := LoadFiles(kfRuleSets["facts"], Options{Captured: sensorTypes})
	if err != nil {
		t.Fatal(err)
	}
	kf := rs.KernelFilter()
	for _, tc := range []struct {
		typ    event.Type
		rule   string
		result Result
		errnos []int // nil: no term (the rule cannot match the type)
	}{
		{event.TypeOpen, "errnos", ResultFailure, []int{2, 13, 40, 999}},
		{event.TypeOpenat2, "errnos", ResultFailure, []int{2, 13, 40, 999}},
		{event.TypeOpenat2, "errnos and", ResultFailure, []int{13}},
		{event.TypeOpenat2, "errnos none", 0, nil},
		{event.TypeOpenat, "errnos unknown", ResultFailure, []int{}},
	} {
		tf := kf.For(tc.typ)
		if tf == nil || tf.PassAll {
			t.Fatalf("%s: not filtered", tc.typ)
		}
		i := slices.IndexFunc(tf.Terms, func(tm OpenTerm) bool { return tm.Rule == tc.rule })
		switch {
		case tc.errnos == nil:
			if i >= 0 {
				t.Errorf("%s %q: term %+v, want none", tc.typ, tc.rule, tf.Terms[i])
			}
		case i < 0:
			t.Errorf("%s %q: no term", tc.typ, tc.rule)
		case tf.Terms[i].Result != tc.result || !slices.Equal(tf.Terms[i].Errnos, tc.errnos):
			t.Errorf("%s %q: %s %v, want %s %v", tc.typ, tc.rule, tf.Terms[i].Result, tf.Terms[i].Errnos, tc.result, tc.errnos)
		}
	}
}

// TestKernelFilterFailDrop pins which failures the default rules let the
// kernel drop: exec (spawned_process wants success), not the types whose
// rules have no result condition; and that a rule without one keeps them.
func TestKernelFilterFailDrop(t *testing.T) {
	kf := loadDefaults(t).KernelFilter()
	for _, tc := range []struct {
		typ  event.Type
		drop bool
	}{
		{event.TypeExecve, true},
		{event.TypeExecveat, true},
		{event.TypeUnlinkat, false},
		{event.TypeOpenat, false}, // the open filter decides
		{event.TypeConnect, false},
	} {
		if got := slices.Contains(kf.FailDrop, tc.typ); got != tc.drop {
			t.Errorf("%s: failures dropped=%v, want %v", tc.typ, got, tc.drop)
		}
	}
	rs, _, err := LoadFiles([]string{"testdata/seed_macros.yaml", filepath.Join(seeds, "runtime-monitoring.yaml")}, Options{Captured: sensorTypes})
	if err != nil {
		t.Fatal(err)
	}
	if fd := rs.KernelFilter().FailDrop; slices.Contains(fd, event.TypeExecve) {
		t.Errorf("seed rules: exec failures dropped (%v), but their spawned_process has no result condition", fd)
	}
}

// TestKernelFilterFiltered checks the lists of filtered and whole types
// the start log prints, on the default rules.
func TestKernelFilterFiltered(t *testing.T) {
	on, off := loadDefaults(t).KernelFilter().Filtered()
	for _, tc := range []struct {
		typ  event.Type
		list []event.Type
	}{{event.TypeOpenat, on}, {event.TypeConnect, on}, {event.TypeUnlinkat, on}, {event.TypeFchmodat2, on}, {event.TypeSymlink, off}} {
		if !slices.Contains(tc.list, tc.typ) {
			t.Errorf("%s: not in %v", tc.typ, tc.list)
		}
	}
	if slices.ContainsFunc(on, func(t event.Type) bool { return slices.Contains(off, t) }) {
		t.Errorf("a type both filtered and whole: %v / %v", on, off)
	}
}
