//go:build linux && (amd64 || arm64)

package capture

import (
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
)

// initPidNS is the inode number of the initial pid namespace
// (PROC_PID_INIT_INO).
const initPidNS = 0xEFFFFFFC

// HostMntNS returns the inode number of the host's mount namespace: pid
// 1's or, when that cannot be read (pid 1 may hold capabilities the caller
// lacks), kthreadd's, which is the kernel's initial one. The caller must
// be in the initial pid namespace, else /proc/1 is some container's init
// and ErrHostNS is returned.
func HostMntNS() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrHostNS, err)
	}
	if st.Ino != initPidNS {
		return 0, fmt.Errorf("%w: not in the host's pid namespace", ErrHostNS)
	}
	err := unix.Stat("/proc/1/ns/mnt", &st)
	if err == nil {
		return st.Ino, nil
	}
	if comm, cerr := os.ReadFile("/proc/2/comm"); cerr == nil && string(comm) == "kthreadd\n" {
		if kerr := unix.Stat("/proc/2/ns/mnt", &st); kerr == nil {
			return st.Ino, nil
		}
	}
	return 0, fmt.Errorf("%w: %w", ErrHostNS, err)
}

// sockTermKey identifies a term: equal terms share a bit.
func sockTermKey(tm *SockTerm) string {
	return fmt.Sprint(tm.Families, tm.Results, tm.Container, tm.Ports, tm.Addrs, tm.NotAddrs)
}

// programSock writes the socket and host parts of f into the kernel maps.
func (c *Capture) programSock(f *Filter) error {
	var cfg triplineTlKfSock
	bitOf := map[string]uint64{}
	var terms []*SockTerm // by bit
	for i := range f.Sock {
		sf := &f.Sock[i]
		if sf.Type != event.TypeConnect {
			return fmt.Errorf("%w: socket filter on %s (connect only)", ErrFilter, sf.Type)
		}
		cfg.Types |= 1 << sf.Type
		for j := range sf.Terms {
			tm := &sf.Terms[j]
			key := sockTermKey(tm)
			bit, ok := bitOf[key]
			if !ok {
				if len(terms) == FilterSockTerms {
					return fmt.Errorf("%w: more than %d socket terms", ErrFilter, FilterSockTerms)
				}
				bit = 1 << len(terms)
				bitOf[key] = bit
				terms = append(terms, tm)
			}
			cfg.TypeTerms[sf.Type] |= bit
		}
	}
	includes := map[netip.Prefix]uint64{}
	excludes := map[netip.Prefix]uint64{}
	for i, tm := range terms {
		bit := uint64(1) << i
		for fam := range cfg.FamTerms {
			if tm.Families&(1<<fam) != 0 {
				cfg.FamTerms[fam] |= bit
			}
		}
		for res := range cfg.ResTerms {
			if tm.Results&(1<<res) != 0 {
				cfg.ResTerms[res] |= bit
			}
		}
		if !tm.Container {
			cfg.HostTerms |= bit
		}
		if tm.Addrs == nil {
			cfg.AnyAddr |= bit
		}
		for _, p := range tm.Addrs {
			includes[p.Masked()] |= bit
		}
		if len(tm.NotAddrs) > 0 {
			cfg.NotaddrTerms |= bit
		}
		for _, p := range tm.NotAddrs {
			excludes[p.Masked()] |= bit
		}
	}
	if len(includes) > FilterEntries || len(excludes) > FilterEntries {
		return fmt.Errorf("%w: %d and %d address prefixes (at most %d each)", ErrFilter, len(includes), len(excludes), FilterEntries)
	}
	if err := fillAddrTrie(c.objs.KfAddrs, includes); err != nil {
		return fmt.Errorf("capture: programming kernel filter addresses: %w", err)
	}
	if err := fillAddrTrie(c.objs.KfNotaddrs, excludes); err != nil {
		return fmt.Errorf("capture: programming kernel filter addresses: %w", err)
	}
	ivs := portIntervals(terms)
	for i, iv := range ivs {
		if err := c.objs.KfPortIvs.Update(uint32(i), &iv, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("capture: programming kernel filter ports: %w", err)
		}
	}
	cfg.PortIvs = uint32(len(ivs))

	host := &c.cfg.Host // written with the config by programFilter
	*host = triplineTlKfHost{}
	for _, t := range f.HostDrop {
		switch t.Class() {
		case event.ClassExec, event.ClassFork, event.ClassExit:
			return fmt.Errorf("%w: %s events are never dropped for host processes", ErrFilter, t)
		}
		if !capturable(t) {
			return fmt.Errorf("%w: type %s is not captured", ErrFilter, t)
		}
		host.Types |= 1 << t
	}
	host.Mntns = f.HostMntNS
	// Last: the filter is on once the other maps hold it.
	if err := c.objs.KfSock.Update(uint32(0), &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("capture: programming kernel filter: %w", err)
	}
	return nil
}

// addrKey is the LPM key of prefix p: the family byte, then the address.
// An IPv6 prefix inside ::ffff:0:0/96 matches no address userspace
// compares (those are unmapped to IPv4): false.
func addrKey(p netip.Prefix) (triplineTlKfAddr, bool) {
	var k triplineTlKfAddr
	p = p.Masked()
	a := p.Addr()
	switch {
	case a.Is4():
		k.Data[0] = 4
		b := a.As4()
		copy(k.Data[1:], b[:])
	case a.Is4In6() && p.Bits() >= 96:
		return k, false
	default:
		k.Data[0] = 6
		b := a.As16()
		copy(k.Data[1:], b[:])
	}
	k.Prefixlen = uint32(8 + p.Bits())
	return k, true
}

// fillAddrTrie writes prefixes into an LPM trie; each carries the bits of
// the shorter prefixes that contain it (a lookup returns the longest).
// Prefixes addrKey cannot hold are left out.
func fillAddrTrie(m *ebpf.Map, prefixes map[netip.Prefix]uint64) error {
	for p, bits := range prefixes {
		k, ok := addrKey(p)
		if !ok {
			continue
		}
		for q, qb := range prefixes {
			if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
				bits |= qb
			}
		}
		if err := m.Update(&k, bits, ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return nil
}

// portIntervals splits the ports at the ends of the terms' ranges; each
// interval holds the terms its ports pass. Too many intervals: the ports
// are not filtered (one interval passing every term).
func portIntervals(terms []*SockTerm) []triplineTlKfPortIv {
	cuts := []uint32{0}
	for _, tm := range terms {
		for _, r := range tm.Ports {
			cuts = append(cuts, uint32(r.Lo), uint32(r.Hi)+1)
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	if cuts[len(cuts)-1] == 65536 {
		cuts = cuts[:len(cuts)-1]
	}
	all := uint64(1)<<len(terms) - 1 // all ones for 64 terms too: 1<<64 is 0
	if len(cuts) > FilterPortIntervals {
		return []triplineTlKfPortIv{{Lo: 0, Bits: all}}
	}
	out := make([]triplineTlKfPortIv, 0, len(cuts))
	for _, lo := range cuts {
		var bits uint64
		for i, tm := range terms {
			if tm.Ports == nil || slices.ContainsFunc(tm.Ports, func(r PortRange) bool {
				return uint32(r.Lo) <= lo && lo <= uint32(r.Hi)
			}) {
				bits |= 1 << i
			}
		}
		out = append(out, triplineTlKfPortIv{Lo: lo, Bits: bits})
	}
	return out
}
