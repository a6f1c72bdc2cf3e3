package rules

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// Families is a set of socket address families, as the kernel filter
// tells them apart (a bit set).
type Families uint8

// Family bits. FamOther is any other family, or none (the fd was not a
// socket and the address gave none).
const (
	FamOther Families = 1 << iota
	FamUnix
	FamInet
	FamInet6

	FamIP  = FamInet | FamInet6
	FamAll = FamOther | FamUnix | FamIP
)

func (f Families) String() string {
	var out []string
	for _, x := range []struct {
		b Families
		s string
	}{{FamInet, "ipv4"}, {FamInet6, "ipv6"}, {FamUnix, "unix"}, {FamOther, "other"}} {
		if f&x.b != 0 {
			out = append(out, x.s)
		}
	}
	return strings.Join(out, "|")
}

// Results is a set of connect outcomes (a bit set).
type Results uint8

// Result bits: success (res >= 0), EINPROGRESS (a non-blocking connect
// under way, res = -115) and any other failure.
const (
	ResOK Results = 1 << iota
	ResInProgress
	ResFailed

	ResAll = ResOK | ResInProgress | ResFailed
)

const einprogress = -115

func (r Results) String() string {
	var out []string
	for _, x := range []struct {
		b Results
		s string
	}{{ResOK, "success"}, {ResInProgress, "EINPROGRESS"}, {ResFailed, "failure"}} {
		if r&x.b != 0 {
			out = append(out, x.s)
		}
	}
	return strings.Join(out, "|")
}

// PortRange is the ports Lo..Hi, both included.
type PortRange struct{ Lo, Hi uint16 }

func (p PortRange) String() string {
	if p.Lo == p.Hi {
		return strconv.Itoa(int(p.Lo))
	}
	return strconv.Itoa(int(p.Lo)) + "-" + strconv.Itoa(int(p.Hi))
}

// KernelSockMaxTerms bounds the socket terms pushed into the kernel: a
// term is one bit of a 64-bit mask there.
const KernelSockMaxTerms = 64

// SockTerm is a necessary condition of one rule on one socket type
// (connect): a connect the rule matches has a family in Families and an
// outcome in Results, comes from a container process when Container, and,
// when it is an IPv4/IPv6 connect, has a remote port (fd.rport/fd.sport)
// in one of Ports (nil: any), a remote address (fd.rip/fd.sip) in one of
// Addrs (nil: any) and in none of NotAddrs. IPv4 prefixes match IPv4
// addresses (IPv4-mapped IPv6 ones included, as userspace unmaps them),
// IPv6 prefixes the other IPv6 addresses.
type SockTerm struct {
	Rule      string
	Families  Families
	Results   Results
	Container bool
	Ports     []PortRange
	Addrs     []netip.Prefix
	NotAddrs  []netip.Prefix
}

// SockFilter is the kernel filter of one socket type: an event passes
// when it passes one of Terms. PassAll (with the Reason) disables it.
type SockFilter struct {
	Type    event.Type
	PassAll bool
	Reason  string
	Terms   []SockTerm
}

// HostDrop says which event types only container rules use: the kernel
// may drop their events from processes in the host's mount namespace.
// Empty with a Reason when that is off for every type.
type HostDrop struct {
	Types  []event.Type
	Reason string
}

// sockFacts is a necessary condition of a (sub)condition on one type.
// The port and address parts hold for IPv4/IPv6 events only: a check on
// fd.sip is false without an IP socket, and its negation true.
type sockFacts struct {
	never    bool
	fams     Families
	res      Results
	ctr      bool
	ports    []PortRange    // nil: any
	addrs    []netip.Prefix // nil: any
	notAddrs []netip.Prefix
}

var anyFacts = sockFacts{fams: FamAll, res: ResAll}

// norm makes facts canonical: no outcome or family is "never", and the
// IP parts go when no IP family is left.
func (f sockFacts) norm() sockFacts {
	if f.never || f.fams == 0 || f.res == 0 {
		return sockFacts{never: true}
	}
	if (f.ports != nil && len(f.ports) == 0) || (f.addrs != nil && len(f.addrs) == 0) {
		f.fams &^= FamIP // no IP event satisfies it
		if f.fams == 0 {
			return sockFacts{never: true}
		}
	}
	if f.fams&FamIP == 0 {
		f.ports, f.addrs, f.notAddrs = nil, nil, nil
	}
	return f
}

func andSock(a, b sockFacts) sockFacts {
	if a.never || b.never {
		return sockFacts{never: true}
	}
	out := sockFacts{fams: a.fams & b.fams, res: a.res & b.res, ctr: a.ctr || b.ctr}
	out.ports = intersectPorts(a.ports, b.ports)
	out.addrs = intersectPrefixes(a.addrs, b.addrs)
	out.notAddrs = unionPrefixes(a.notAddrs, b.notAddrs)
	return out.norm()
}

func orSock(a, b sockFacts) sockFacts {
	if a.never {
		return b
	}
	if b.never {
		return a
	}
	out := sockFacts{fams: a.fams | b.fams, res: a.res | b.res, ctr: a.ctr && b.ctr}
	switch {
	case a.fams&FamIP == 0: // an IP event can only match b
		out.ports, out.addrs, out.notAddrs = b.ports, b.addrs, b.notAddrs
	case b.fams&FamIP == 0:
		out.ports, out.addrs, out.notAddrs = a.ports, a.addrs, a.notAddrs
	default:
		if a.ports != nil && b.ports != nil {
			out.ports = unionPorts(a.ports, b.ports)
		}
		if a.addrs != nil && b.addrs != nil {
			out.addrs = unionPrefixes(a.addrs, b.addrs)
		}
		// Excluded by both (nil here is no exclusion, not "any").
		if a.notAddrs != nil && b.notAddrs != nil {
			out.notAddrs = intersectPrefixes(a.notAddrs, b.notAddrs)
		}
	}
	if len(out.notAddrs) == 0 {
		out.notAddrs = nil
	}
	return out.norm()
}

// sockFactsOf summarizes the resolved condition n on type t, negated when
// neg. Only the container and evt.type facts are derived for types other
// than connect.
func sockFactsOf(n node, t event.Type, neg bool) sockFacts {
	switch n := n.(type) {
	case *andNode, *orNode:
		kids, isAnd := junction(n)
		// not (a and b) = not a or not b; not (a or b) = not a and not b.
		if isAnd != neg {
			acc := anyFacts
			for _, k := range kids {
				acc = andSock(acc, sockFactsOf(k, t, neg))
			}
			return acc
		}
		acc := sockFacts{never: true}
		for _, k := range kids {
			acc = orSock(acc, sockFactsOf(k, t, neg))
		}
		return acc
	case *notNode:
		return sockFactsOf(n.x, t, !neg)
	case *checkNode:
		return sockCheck(n, t, neg)
	}
	return anyFacts
}

// ctrOnly are the fields without a value outside containers.
var ctrOnly = map[string]bool{
	"container.image": true, "container.image.repository": true, "container.image.tag": true,
	"container.image.digest": true, "container.type": true, "container.privileged": true, "container.mounts": true,
}

// ipFields are the address and port fields: a value only for an IPv4 or
// IPv6 socket.
var ipFields = map[string]bool{
	"fd.sip": true, "fd.rip": true, "fd.dip": true, "fd.snet": true, "fd.rnet": true, "fd.ip": true, "fd.net": true,
	"fd.sport": true, "fd.rport": true, "fd.dport": true, "fd.port": true,
	"fd.cip": true, "fd.lip": true, "fd.cnet": true, "fd.lnet": true, "fd.cport": true, "fd.lport": true,
}

// sockCheck summarizes one check (negated when neg) on type t.
func sockCheck(c *checkNode, t event.Type, neg bool) sockFacts {
	if c.lhs.xform != "" || c.rhs != nil || c.lhs.hasArg {
		return anyFacts
	}
	op := c.op
	if op == "==" {
		op = "="
	}
	f := anyFacts
	if op == "exists" {
		switch field := c.lhs.field; {
		case neg:
		case ctrOnly[field]:
			f.ctr = true
		case t == event.TypeConnect && ipFields[field]:
			f.fams = FamIP
		}
		return f
	}
	if len(c.vals) == 0 {
		return anyFacts
	}
	vs := vals(c)
	switch field := c.lhs.field; field {
	case "evt.type":
		in := false
		for _, v := range vs {
			in = in || v == t.String()
		}
		switch op {
		case "=", "in":
		case "!=":
			in = !in
		default:
			return anyFacts
		}
		if in == neg {
			return sockFacts{never: true}
		}
		return anyFacts
	case "container.id", "container.full_id":
		// "host" outside containers, never missing.
		host := slices.Contains(vs, event.HostID)
		eq := op == "=" || op == "in"
		// True only in containers: = a container id, != host, and their
		// negations not = host, not != a container id.
		f.ctr = (eq && host == neg) || (op == "!=" && host != neg)
		return f
	}
	if ctrOnly[c.lhs.field] {
		// No value outside containers: any comparison is false there.
		f.ctr = !neg
		return f
	}
	if t != event.TypeConnect {
		return anyFacts
	}
	switch field := c.lhs.field; field {
	case "fd.typechar", "fd.type", "fd.sockfamily":
		if op != "=" && op != "in" && op != "!=" {
			return anyFacts
		}
		// The families the check is true on (exact: a missing value is
		// "other" and compares false).
		var tr Families
		for _, v := range vs {
			tr |= famOfValue(field, v)
		}
		if op == "!=" {
			tr = (FamUnix | FamIP) &^ tr
			if len(vs) != 1 {
				return anyFacts
			}
		}
		if neg {
			tr = FamAll &^ tr
		}
		f.fams = tr
		return f.norm()
	case "evt.rawres", "evt.res", "evt.failed", "fd.connected":
		yes, no, ok := resultSets(field, op, vs)
		if !ok {
			return anyFacts
		}
		if neg {
			yes = no
		}
		f.res = yes
		return f.norm()
	case "fd.sip", "fd.rip", "fd.dip", "fd.snet", "fd.rnet", "fd.ip", "fd.net":
		multi := field == "fd.ip" || field == "fd.net"
		ps, ok := ipPrefixes(vs)
		if !ok || (op != "=" && op != "in" && op != "!=") || (op != "in" && len(vs) != 1) {
			if !neg && op != "exists" {
				f.fams = FamIP // any comparison needs the address
			}
			return f.norm()
		}
		switch {
		case op != "!=" && !neg && !multi: // rip in ps
			f.fams, f.addrs = FamIP, ps
		case op != "!=" && neg: // no end (or the remote end) in ps
			f.notAddrs = ps
		case op == "!=" && !neg: // every end differs
			f.fams, f.notAddrs = FamIP, ps
		case op == "!=" && neg && !multi: // missing, or rip in ps
			f.addrs = ps
		case !neg:
			f.fams = FamIP
		}
		return f.norm()
	case "fd.sport", "fd.rport", "fd.dport", "fd.port":
		multi := field == "fd.port"
		tr, ok := portSet(op, vs)
		if !ok {
			if !neg && op != "exists" {
				f.fams = FamIP
			}
			return f.norm()
		}
		switch {
		case !neg && !multi:
			f.fams, f.ports = FamIP, tr
		case !neg && op == "!=": // every end differs: rport too
			f.fams, f.ports = FamIP, tr
		case !neg:
			f.fams = FamIP
		case neg && (!multi || op != "!="): // missing, or the check is false on rport
			f.ports = complementPorts(tr)
		}
		return f.norm()
	case "fd.cip", "fd.lip", "fd.cnet", "fd.lnet", "fd.cport", "fd.lport":
		if !neg && op != "exists" {
			f.fams = FamIP
		}
		return f.norm()
	}
	return anyFacts
}

func famOfValue(field, v string) Families {
	switch field {
	case "fd.typechar":
		switch v {
		case "4":
			return FamInet
		case "6":
			return FamInet6
		case "u":
			return FamUnix
		}
	case "fd.type":
		switch v {
		case "ipv4":
			return FamInet
		case "ipv6":
			return FamInet6
		case "unix":
			return FamUnix
		}
	case "fd.sockfamily":
		switch v {
		case "ip":
			return FamIP
		case "unix":
			return FamUnix
		}
	}
	return 0
}

// resultSets returns the outcomes on which the check may be true (yes)
// and may be false (no); ok false when the check is not understood.
func resultSets(field, op string, vs []string) (yes, no Results, ok bool) {
	switch field {
	case "evt.failed", "fd.connected":
		if (op != "=" && op != "in" && op != "!=") || (op == "!=" && len(vs) != 1) {
			return 0, 0, false
		}
		want := map[bool]bool{}
		for _, v := range vs {
			b, err := parseBool(v)
			if err != nil {
				return 0, 0, false
			}
			want[b] = true
		}
		failed := ResInProgress | ResFailed // evt.failed = true
		for _, b := range []bool{true, false} {
			cls := failed
			if (field == "fd.connected") == b {
				cls = ResOK
			}
			if want[b] != (op == "!=") {
				yes |= cls
			} else {
				no |= cls
			}
		}
		return yes, no, true
	case "evt.res":
		if op != "=" && op != "in" && op != "!=" || (op == "!=" && len(vs) != 1) {
			return 0, 0, false
		}
		no = ResFailed // many errnos: a list cannot name them all
		for _, v := range vs {
			switch v {
			case "SUCCESS":
				yes |= ResOK
			case "EINPROGRESS":
				yes |= ResInProgress
			default:
				yes |= ResFailed
			}
		}
		no |= (ResOK | ResInProgress) &^ yes
		if op == "!=" {
			yes, no = no, yes
		}
		return yes, no, true
	}
	// evt.rawres: test the predicate on the points where its truth can
	// change within each outcome.
	pred, nums, ok := numPred(op, vs)
	if !ok {
		return 0, 0, false
	}
	const lo, hi = -1 << 62, 1 << 62
	points := map[Results][]int64{ResOK: {0, hi}, ResInProgress: {einprogress}, ResFailed: {-1, einprogress - 1, einprogress + 1, lo}}
	for _, n := range nums {
		for _, p := range []int64{n - 1, n, n + 1} {
			switch {
			case p >= 0:
				points[ResOK] = append(points[ResOK], p)
			case p != einprogress:
				points[ResFailed] = append(points[ResFailed], p)
			}
		}
	}
	for cls, ps := range points {
		for _, p := range ps {
			if pred(p) {
				yes |= cls
			} else {
				no |= cls
			}
		}
	}
	return yes, no, true
}

// numPred is the userspace test of the number check op vs (constMatcher),
// so that what the kernel is told agrees with what the rules evaluate, and
// the values it names.
func numPred(op string, vs []string) (pred func(int64) bool, nums []int64, ok bool) {
	for _, v := range vs {
		n, err := parseNum(v)
		if err != nil {
			return nil, nil, false
		}
		nums = append(nums, n)
	}
	mop := op
	if op == "!=" { // the evaluator negates "=" for "!="
		mop = "="
	}
	m, err := constMatcher(mop, fields.Int, vs)
	if err != nil || m.num == nil {
		return nil, nil, false
	}
	if op == "!=" {
		return func(v int64) bool { return !m.num(v) }, nums, true
	}
	return m.num, nums, true
}

// portSet is the set of ports the check op vs is true on (exact).
func portSet(op string, vs []string) ([]PortRange, bool) {
	pred, nums, ok := numPred(op, vs)
	if !ok {
		return nil, false
	}
	// Boundaries where the predicate may change.
	cuts := []int64{0, 65536}
	for _, n := range nums {
		for _, p := range []int64{n, n + 1} {
			if p > 0 && p < 65536 {
				cuts = append(cuts, p)
			}
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	out := []PortRange{}
	for i := 0; i+1 < len(cuts); i++ {
		if pred(cuts[i]) {
			out = append(out, PortRange{uint16(cuts[i]), uint16(cuts[i+1] - 1)})
		}
	}
	return mergePorts(out), true
}

func mergePorts(rs []PortRange) []PortRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Lo < rs[j].Lo })
	out := []PortRange{}
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.Lo) <= uint32(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func unionPorts(a, b []PortRange) []PortRange {
	return mergePorts(append(slices.Clone(a), b...))
}

func intersectPorts(a, b []PortRange) []PortRange {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := []PortRange{}
	for _, x := range a {
		for _, y := range b {
			lo, hi := max(x.Lo, y.Lo), min(x.Hi, y.Hi)
			if lo <= hi {
				out = append(out, PortRange{lo, hi})
			}
		}
	}
	return mergePorts(out)
}

func complementPorts(a []PortRange) []PortRange {
	out := []PortRange{}
	next := uint32(0)
	for _, r := range mergePorts(slices.Clone(a)) {
		if uint32(r.Lo) > next {
			out = append(out, PortRange{uint16(next), r.Lo - 1})
		}
		next = uint32(r.Hi) + 1
	}
	if next <= 65535 {
		out = append(out, PortRange{uint16(next), 65535})
	}
	return out
}

// ipPrefixes parses the values as userspace does (parseNet). An IPv6
// prefix inside ::ffff:0:0/96 matches nothing there (addresses are
// unmapped first): it is left out.
func ipPrefixes(vs []string) ([]netip.Prefix, bool) {
	out := []netip.Prefix{}
	mapped := netip.MustParsePrefix("::ffff:0:0/96")
	for _, v := range vs {
		p, err := parseNet(v)
		if err != nil {
			return nil, false
		}
		if p.Addr().Is6() && p.Bits() >= 96 && mapped.Contains(p.Addr()) {
			continue
		}
		out = append(out, p)
	}
	return canonPrefixes(out), true
}

// canonPrefixes sorts and drops the prefixes another one contains.
func canonPrefixes(ps []netip.Prefix) []netip.Prefix {
	sort.Slice(ps, func(i, j int) bool {
		if c := ps[i].Addr().Compare(ps[j].Addr()); c != 0 {
			return c < 0
		}
		return ps[i].Bits() < ps[j].Bits()
	})
	out := ps[:0:0]
	for _, p := range ps {
		covered := false
		for _, q := range ps {
			if q != p && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				covered = true
				break
			}
		}
		if !covered && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

func unionPrefixes(a, b []netip.Prefix) []netip.Prefix {
	if a == nil && b == nil {
		return nil
	}
	return canonPrefixes(append(slices.Clone(a), b...))
}

// intersectPrefixes is the set of addresses in both (nil: any).
func intersectPrefixes(a, b []netip.Prefix) []netip.Prefix {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	out := []netip.Prefix{}
	for _, x := range a {
		for _, y := range b {
			if x.Overlaps(y) {
				if x.Bits() >= y.Bits() {
					out = append(out, x)
				} else {
					out = append(out, y)
				}
			}
		}
	}
	return canonPrefixes(out)
}

// usesStdFDs reports whether a rule reads proc.stdin/stdout/stderr, which
// the process table keeps from the open, connect, socket and dup events
// of every process: those cannot be dropped for lack of a matching rule.
func usesStdFDs(rs *Ruleset) bool {
	var uses func(o *operandNode) bool
	uses = func(o *operandNode) bool {
		if o == nil {
			return false
		}
		return strings.HasPrefix(o.field, "proc.stdin.") || strings.HasPrefix(o.field, "proc.stdout.") ||
			strings.HasPrefix(o.field, "proc.stderr.") || uses(o.inner)
	}
	found := false
	seen := map[*Rule]bool{} // a rule is indexed on each of its types
	for _, t := range rs.types {
		for _, r := range rs.byType[t] {
			if seen[r] {
				continue
			}
			seen[r] = true
			walkChecks(r.cond, func(c *checkNode) {
				found = found || uses(c.lhs) || uses(c.rhs)
			})
		}
	}
	return found
}

// sockFilter derives the connect filter.
func (rs *Ruleset) sockFilter(t event.Type, std bool) SockFilter {
	sf := SockFilter{Type: t}
	if std {
		sf.PassAll, sf.Reason = true, "a rule reads proc.stdin/stdout/stderr, which every connect can change"
		return sf
	}
	for _, r := range rs.byType[t] {
		f := sockFactsOf(r.cond, t, false)
		if f.never {
			continue
		}
		tm := SockTerm{Rule: r.Name, Families: f.fams, Results: f.res, Container: f.ctr,
			Ports: f.ports, Addrs: f.addrs, NotAddrs: f.notAddrs}
		if f.fams == FamAll && f.res == ResAll && !f.ctr && f.ports == nil && f.addrs == nil && len(f.notAddrs) == 0 {
			sf.PassAll, sf.Reason = true, "rule "+strconv.Quote(r.Name)+" has no family, result, port, address or container condition the kernel can test"
		}
		sf.Terms = append(sf.Terms, tm)
	}
	if !sf.PassAll && len(sf.Terms) > KernelSockMaxTerms {
		sf.PassAll, sf.Reason = true, "more rules than the kernel's term mask holds"
	}
	if sf.PassAll {
		sf.Terms = nil
	}
	return sf
}

// hostDrop derives the types only container rules use. Exec, fork and
// exit are never among them: the process table and container identity
// need every one.
func (rs *Ruleset) hostDrop(std bool) HostDrop {
	var hd HostDrop
	if std {
		hd.Reason = "a rule reads proc.stdin/stdout/stderr, which the events of host processes keep up to date"
		return hd
	}
	for _, t := range rs.types {
		switch t.Class() {
		case event.ClassExec, event.ClassFork, event.ClassExit, event.ClassContainer:
			continue
		}
		all, any := true, false
		for _, r := range rs.byType[t] {
			f := sockFactsOf(r.cond, t, false)
			if f.never {
				continue
			}
			any = true
			all = all && f.ctr
		}
		if any && all {
			hd.Types = append(hd.Types, t)
		}
	}
	return hd
}

// pass is the connect filter's decision, as the kernel takes it.
func (sf *SockFilter) pass(ev *event.Event, hostMnt bool) bool {
	if sf.PassAll {
		return true
	}
	c := &ev.Connect
	fam := FamOther
	switch c.Family {
	case event.AFUnix:
		fam = FamUnix
	case event.AFInet:
		fam = FamInet
	case event.AFInet6:
		fam = FamInet6
	}
	res := ResFailed
	switch {
	case ev.Res >= 0:
		res = ResOK
	case ev.Res == einprogress:
		res = ResInProgress
	}
	addr := c.RemoteAddr.Unmap()
	for i := range sf.Terms {
		tm := &sf.Terms[i]
		if tm.Families&fam == 0 || tm.Results&res == 0 || (tm.Container && hostMnt) {
			continue
		}
		if fam&FamIP != 0 {
			if tm.Ports != nil && !slices.ContainsFunc(tm.Ports, func(p PortRange) bool {
				return p.Lo <= c.RemotePort && c.RemotePort <= p.Hi
			}) {
				continue
			}
			in := func(p netip.Prefix) bool { return p.Contains(addr) }
			if tm.Addrs != nil && !slices.ContainsFunc(tm.Addrs, in) {
				continue
			}
			if slices.ContainsFunc(tm.NotAddrs, in) {
				continue
			}
		}
		return true
	}
	return false
}

// Passes is the whole kernel filter's decision on ev, from a process in
// the host's mount namespace when hostMnt: false when no rule can match
// it. Userspace calls a process a container only when it is in a mount
// namespace of its own (see docs/operations.md), so a container event has
// hostMnt false.
func (k *KernelFilter) Passes(ev *event.Event, hostMnt bool) bool {
	if hostMnt && slices.Contains(k.Host.Types, ev.Type) {
		return false
	}
	if ev.Res < 0 && slices.Contains(k.FailDrop, ev.Type) {
		return false
	}
	for i := range k.Sock {
		if k.Sock[i].Type == ev.Type {
			return k.Sock[i].pass(ev, hostMnt)
		}
	}
	for i := range k.Files {
		if k.Files[i].Type == ev.Type {
			return k.Files[i].pass(ev, hostMnt)
		}
	}
	return k.Pass(ev)
}
