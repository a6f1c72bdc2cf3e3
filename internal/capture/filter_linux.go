//go:build linux && (amd64 || arm64)

package capture

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/tripline/tripline/internal/event"
)

// ErrFilter reports a Filter the kernel maps cannot hold.
var ErrFilter = errors.New("capture: invalid kernel filter")

// Access classes of an open (enum tl_kf_access).
const (
	accRO = iota
	accWO
	accRW
)

func kfBit(t event.Type, acc int) uint64 { return 1 << (uint(t)%16*4 + uint(acc)) }

// termBits are the (type, access class) bits a term lets pass.
func termBits(t event.Type, tm *OpenTerm) uint64 {
	var b uint64
	if !tm.Write {
		b |= kfBit(t, accRO)
	}
	if !tm.Read {
		b |= kfBit(t, accWO)
	}
	return b | kfBit(t, accRW)
}

// kfTables is a Filter as the kernel maps hold it: kf_config and the
// entries of kf_prefixes, kf_contains and kf_names with their bits.
type kfTables struct {
	cfg                       triplineTlKfilter
	prefixes, contains, names map[string]uint64
	fnames                    map[string]triplineTlKfFname
	fflags                    map[event.Type]triplineTlKfFflag
}

// programFilter writes f into the kernel filter maps and the config.
// Called from New only, after program.
func (c *Capture) programFilter(f *Filter) error {
	t, err := buildFilter(f)
	if err != nil {
		return err
	}
	if err := fillTrie(c.objs.KfPrefixes, t.prefixes); err != nil {
		return fmt.Errorf("capture: programming kernel filter prefixes: %w", err)
	}
	if err := fillTrie(c.objs.KfContains, t.contains); err != nil {
		return fmt.Errorf("capture: programming kernel filter texts: %w", err)
	}
	for n, bits := range t.names {
		k := kfName(n)
		if err := c.objs.KfNames.Update(&k, bits, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("capture: programming kernel filter names: %w", err)
		}
	}
	for ty, v := range t.fflags {
		if err := c.objs.KfFflags.Update(uint32(ty), &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("capture: programming kernel filter flags: %w", err)
		}
	}
	for n, v := range t.fnames {
		k := kfName(n)
		if err := c.objs.KfFnames.Update(&k, &v, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("capture: programming kernel filter file names: %w", err)
		}
	}
	if err := c.programSock(f); err != nil {
		return err
	}
	// The open and host filters live in the config, written last: the
	// filter is on once the other maps hold it.
	c.cfg.Kf = t.cfg
	if err := c.objs.Config.Update(uint32(0), &c.cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("capture: programming kernel filter: %w", err)
	}
	return nil
}

// kfName is n as a kf_names or kf_fnames key: NUL-padded.
func kfName(n string) triplineTlKfName {
	var k triplineTlKfName
	for i := range len(n) {
		k.Name[i] = int8(n[i])
	}
	return k
}

// buildFiles adds the file-change filter of f to t.
func buildFiles(f *Filter, t *kfTables) error {
	cfg := &t.cfg
	for i := range f.File {
		ff := &f.File[i]
		if ff.Type.Class() != event.ClassFile {
			return fmt.Errorf("%w: type %s is not a file change", ErrFilter, ff.Type)
		}
		bit := uint64(1) << ff.Type
		if cfg.FileTypes&bit != 0 {
			return fmt.Errorf("%w: type %s filtered twice", ErrFilter, ff.Type)
		}
		cfg.FileTypes |= bit
		all := false
		for j := range ff.Terms {
			tm := &ff.Terms[j]
			if tm.Container {
				cfg.FileCtr |= bit
				continue
			}
			if tm.Flags != 0 {
				fl, ok := t.fflags[ff.Type]
				if tm.FlagReg >= 6 || (ok && fl.Reg != uint32(tm.FlagReg)) {
					return fmt.Errorf("%w: type %s: flags of register %d", ErrFilter, ff.Type, tm.FlagReg)
				}
				fl.Reg = uint32(tm.FlagReg)
				fl.Mask |= tm.Flags
				t.fflags[ff.Type] = fl
				cfg.FileFlags |= bit
				continue
			}
			for s, names := range tm.Names {
				if names == nil {
					continue
				}
				cfg.FileSlots[s] |= bit
				for _, n := range names {
					switch {
					case len(n) > FilterNameMax:
						all = true // the kernel compares shorter names only
					case n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00"):
						// never a plain last component: such paths pass anyway
					default:
						v := t.fnames[n]
						v.Slots[s] |= bit
						t.fnames[n] = v
					}
				}
			}
		}
		if all {
			cfg.FileTypes &^= bit
		}
	}
	if len(t.fnames) > FilterEntries {
		return fmt.Errorf("%w: %d file names (at most %d)", ErrFilter, len(t.fnames), FilterEntries)
	}
	return nil
}

// buildFilter derives the kernel maps' contents from f.
func buildFilter(f *Filter) (*kfTables, error) {
	var cfg triplineTlKfilter
	prefixes := map[string]uint64{}
	contains := map[string]uint64{}
	names := map[string]uint64{}
	for _, t := range f.FailDrop {
		if t >= event.TypeContainer {
			return nil, fmt.Errorf("%w: type %s has no syscall", ErrFilter, t)
		}
		cfg.FailDrop |= 1 << t
	}
	for i := range f.Open {
		of := &f.Open[i]
		if of.Type.Class() != event.ClassOpen {
			return nil, fmt.Errorf("%w: type %s is not an open", ErrFilter, of.Type)
		}
		cfg.Types |= 1 << of.Type
		for j := range of.Terms {
			tm := &of.Terms[j]
			bits := termBits(of.Type, tm)
			switch {
			case tm.Success:
			case len(tm.Errnos) == 0 || slices.ContainsFunc(tm.Errnos, func(e int) bool { return e <= 0 || e >= FilterErrnoMax }):
				cfg.FailPass |= bits
			default:
				for _, e := range tm.Errnos {
					cfg.FailErrno[e] |= bits
				}
			}
			if tm.Failure {
				continue
			}
			if tm.AnyPath {
				cfg.AnyPath |= bits
				continue
			}
			for _, p := range tm.Prefixes {
				if p == "" || p == "/" { // a resolved path starts with "/"

					cfg.AnyPath |= bits
					continue
				}
				if len(p) > FilterPrefixMax {
					p = p[:FilterPrefixMax]
				}
				prefixes[p] |= bits
				cfg.PathBits |= bits
			}
			for _, x := range tm.Contains {
				if !strings.HasPrefix(x, "/") {
					return nil, fmt.Errorf("%w: contained text %q does not begin with /", ErrFilter, x)
				}
				if len(x) > FilterPrefixMax {
					x = x[:FilterPrefixMax]
				}
				if len(x) < 2 { // every path contains "/"
					cfg.AnyPath |= bits
					continue
				}
				contains[x] |= bits
				cfg.Contains |= bits
				cfg.PathBits |= bits
				cfg.ContainsFirst[x[1]>>6] |= 1 << (x[1] & 63)
			}
			for _, n := range tm.Names {
				if strings.ContainsAny(n, "/\x00") {
					continue // never a path component: nothing to let pass
				}
				if len(n) > FilterNameMax {
					cfg.AnyPath |= bits // the kernel compares shorter names only
					continue
				}
				names[n] |= bits
				cfg.PathBits |= bits
			}
		}
	}
	if len(prefixes) > FilterEntries || len(contains) > FilterEntries || len(names) > FilterEntries {
		return nil, fmt.Errorf("%w: %d prefixes, %d contained texts and %d names (at most %d each)",
			ErrFilter, len(prefixes), len(contains), len(names), FilterEntries)
	}
	// What the kernel checks before a lookup: a path that a prefix starts
	// has the prefix's second byte after its leading '/'; a name in the map
	// has its length and first byte.
	for p, bits := range prefixes {
		if p[0] == '/' {
			cfg.PrefixFirst[p[1]] |= bits
			continue
		}
		for b := range cfg.PrefixFirst { // never starts a resolved path: let the lookup decide
			cfg.PrefixFirst[b] |= bits
		}
	}
	for n := range names {
		cfg.NameLens |= 1 << len(n)
		if n != "" {
			cfg.NameFirst[n[0]>>6] |= 1 << (n[0] & 63)
		}
	}
	t := &kfTables{cfg: cfg, prefixes: prefixes, contains: contains, names: names,
		fnames: map[string]triplineTlKfFname{}, fflags: map[event.Type]triplineTlKfFflag{}}
	if err := buildFiles(f, t); err != nil {
		return nil, err
	}
	return t, nil
}

// fillTrie writes prefixes into an LPM trie. The trie answers with the
// longest matching prefix only, so each prefix also carries the bits of the
// shorter prefixes it extends.
func fillTrie(m *ebpf.Map, prefixes map[string]uint64) error {
	for p := range prefixes {
		bits := prefixes[p]
		for q, qb := range prefixes {
			if len(q) < len(p) && strings.HasPrefix(p, q) {
				bits |= qb
			}
		}
		var k triplineTlKfPrefix
		k.Prefixlen = uint32(len(p) * 8)
		copy(k.Data[:], p)
		if err := m.Update(&k, bits, ebpf.UpdateAny); err != nil {
			return err
		}
	}
	return nil
}
