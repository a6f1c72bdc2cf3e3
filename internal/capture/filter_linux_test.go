//go:build linux && (amd64 || arm64)

package capture

import (
	"math/rand/v2"
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

// TestKernelFilter checks with real opens that the kernel filter drops
// (and counts) the opens no term lets pass and sends the others, and that
// a capture without a filter sends everything.
func TestKernelFilter(t *testing.T) {
	testenv.RequireRoot(t)
	dir := realDir(t)
	wdir := filepath.Join(dir, "w")
	if err := os.Mkdir(wdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"a/deep/dir", "a/xdeep/dir", "a/deeper", "b", "c"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"other.txt", "wanted.txt", "wanted.txx", "w/x", "a/deep/dir/f", "a/xdeep/dir/f", "a/deeper/f",
		"a/zz", "a/zy", "b/src", "b/wanted.txt", "c/wantex.txt", "c/wanted.txt"} {
		writeFile(t, filepath.Join(dir, n), "x", 0o644)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	// Names too long for the dentry's inline store, paths around the
	// length the kernel scans for texts, and mounts in the middle of the
	// path: the dentry-chain precheck leaves the first two to the built
	// path and must follow the mounts.
	long, long2 := strings.Repeat("l", 60), strings.Repeat("k", 60)
	longName := "a-wanted-file-name-longer-than-a-dentry-stores.txt"
	name35 := "thirty-five-bytes-wanted-name-x.txt" // inline since Linux 6.14, not before
	deepDir := "q" + strings.Repeat("/"+strings.Repeat("n", 30), 9)
	// sized returns a path of n bytes below e/, of components of at most 31
	// bytes starting with 'e' (no text starts so).
	sized := func(n int) string {
		s := p("e")
		for len(s)+32 < n {
			s += "/" + strings.Repeat("e", 30)
		}
		return s + "/" + strings.Repeat("e", n-len(s)-1)
	}
	scanMax, overScan := sized(FilterScanMax), sized(FilterScanMax+1)
	if len(scanMax) != FilterScanMax || len(overScan) != FilterScanMax+1 {
		t.Fatalf("sized paths of %d and %d bytes", len(scanMax), len(overScan))
	}
	for _, d := range []string{p(long), p(long2), p(deepDir), p("m"), p("w/mnt"), p("src2/dir"), p("deep"), filepath.Dir(scanMax), filepath.Dir(overScan)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"m", "w/mnt"} {
		if err := unix.Mount("tmpfs", p(m), "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(p(m), unix.MNT_DETACH) })
	}
	for _, d := range []string{"m/deep/dir", "m/sub"} {
		if err := os.MkdirAll(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{long + "/wanted.txt", long + "/other.txt", long2 + "/other.txt", "a/" + longName, "a/" + longName + "x",
		deepDir + "/f", "m/wanted.txt", "m/sub/other", "m/deep/dir/f", "src2/dir/f", "a/czfile",
		"a/" + name35, "a/" + name35[:34] + "y"} {
		writeFile(t, p(n), "x", 0o644)
	}
	writeFile(t, scanMax, "x", 0o644)
	writeFile(t, overScan, "x", 0o644)
	// A bind-mounted directory: the path has the mount point's name
	// ("deep"), not the source's.
	if err := unix.Mount(p("src2"), p("deep"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(p("deep"), unix.MNT_DETACH) })
	// Bind-mounted files: the opened dentry's name (the kernel's hint for
	// the file name) is the source's, the path ends in the mount point's.
	for _, m := range [][2]string{{"b/src", "b/wanted.txt"}, {"c/wantex.txt", "c/wanted.txt"}} {
		if err := unix.Mount(p(m[0]), p(m[1]), "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(p(m[1]), unix.MNT_DETACH) })
	}
	var filter Filter
	for _, ty := range event.ClassOpen.Types() {
		filter.Open = append(filter.Open, OpenFilter{Type: ty, Terms: []OpenTerm{
			{Write: true, Success: true, Prefixes: []string{wdir + "/"}},
			{Read: true, Success: true, Names: []string{"wanted.txt", "zz", longName, name35}},
			{Read: true, Success: true, Contains: []string{"/deep/dir/", "/" + long + "/", "/cz", "/proc/sy"}},
			{Read: true, Success: true, Prefixes: []string{"/dev/zer"}},
			// Failed reads with ENOTDIR or ELOOP (a failed open has no
			// resolved path: its errno decides).
			{Read: true, Failure: true, Errnos: []int{int(unix.ENOTDIR), int(unix.ELOOP)}},
		}})
	}
	ops := []struct {
		op   string
		path string
		pass bool
	}{
		{"r", p("other.txt"), false},      // no prefix, no name
		{"r", p("w/x"), false},            // the prefix wants writes
		{"r", p("missing.txt"), false},    // failed, ENOENT: no term wants it
		{"r", p("other.txt/x"), true},     // failed, ENOTDIR: the failure term
		{"w", p("other.txt/x"), false},    // the failure term wants reads
		{"w", p("w/x"), true},             // prefix + write
		{"r", p("wanted.txt"), true},      // name + read
		{"w", p("wanted.txt"), false},     // the name wants reads
		{"w", p("w/new.txt"), true},       // created below the prefix
		{"r", p("w"), false},              // the directory itself is not below it
		{"r", p("wanted.txt.bak"), false}, // names match whole components
		{"r", p("a/deep/dir/f"), true},    // contains, at a component
		{"r", p("a/xdeep/dir/f"), false},  // not at a component
		{"w", p("a/deep/dir/f"), false},   // contains wants reads
		{"r", p("a/deeper/f"), false},     // a component starting like the text
		{"r", p("wanted.txx"), false},     // a name's length and first byte, not the name
		{"r", p("a/zz"), true},            // a name of another length
		{"r", p("a/zy"), false},
		{"r", p("b/wanted.txt"), true}, // bind mount: the path's name counts
		{"r", p("c/wanted.txt"), true}, // the same, the source's name as long
		{"r", "/dev/zero", true},       // a prefix below another top directory
		{"r", p(long + "/wanted.txt"), true},
		{"r", p(long + "/other.txt"), true}, // a text of a long name
		{"r", p(long2 + "/other.txt"), false},
		{"r", p("a/" + longName), true},
		{"r", p("a/" + longName + "x"), false},
		{"r", p(deepDir + "/f"), true},  // longer than the text scan: a text may be in it
		{"w", p(deepDir + "/f"), false}, // no text for writes
		{"r", p("m/wanted.txt"), true},  // across a mount
		{"r", p("m/sub/other"), false},
		{"r", p("m/deep/dir/f"), true},
		{"w", p("w/mnt/x"), true},              // across a mount, the prefix above it
		{"r", p("w/mnt/x"), false},             // the prefix wants writes
		{"r", p("deep/dir/f"), true},           // a bind-mounted directory: its mount point's name
		{"r", p("src2/dir/f"), false},          // the same file by its own path
		{"r", p("a/czfile"), true},             // a text starting at the file name
		{"r", "/proc/sys/kernel/ostype", true}, // a text starting at the top component
		{"r", p("a/" + name35), true},
		{"r", p("a/" + name35[:34] + "y"), false}, // the name's length and first byte only
		{"r", scanMax, false},                     // scanned for texts: none
		{"r", overScan, true},                     // longer than the scan: a text may be in it
	}
	// Every open is made through openat2 (its flags in user memory), then
	// through openat.
	var list []string
	for _, sfx := range []string{"2", ""} {
		for _, o := range ops {
			list = append(list, o.op+sfx+":"+o.path)
		}
	}
	const marker = "/dev/null" // read, no term: must be dropped too; the last op below passes
	list = append(list, "r:"+marker, "r:"+p("wanted.txt"))

	for _, withFilter := range []bool{true, false} {
		name := "filter"
		cfg := Config{PID: uint32(os.Getpid()), Types: event.ClassOpen.Types()}
		if withFilter {
			cfg.Filter = &filter
		} else {
			name = "no filter"
		}
		t.Run(name, func(t *testing.T) {
			col := startCapture(t, cfg)
			pid := helper(t, "openlist", strings.Join(list, ","))
			// The last open arrives after every earlier record of the helper.
			testenv.Eventually(t, 10*time.Second, func() bool {
				col.mu.Lock()
				defer col.mu.Unlock()
				n := 0
				for _, e := range col.evs {
					if e.Type == event.TypeOpenat && e.Proc.PID == pid && e.Open.Path == p("wanted.txt") && e.Open.Flags&3 == 0 {
						n++
					}
				}
				return n == 2
			}, "the helper's last open did not arrive")
			dropped := 0
			for _, ty := range []event.Type{event.TypeOpenat2, event.TypeOpenat} {
				for _, o := range ops {
					ev := col.find(func(e *event.Event) bool {
						return e.Type == ty && e.Proc.PID == pid && e.Open.Path == o.path &&
							(e.Open.Flags&3 != 0) == (o.op == "w")
					})
					got := ev != nil
					want := o.pass || !withFilter
					if got != want {
						t.Errorf("%v %s %s: sent=%v, want %v", ty, o.op, o.path, got, want)
					}
					// The helper ignores errors: only these may fail.
					failing := o.path == p("missing.txt") || o.path == p("wanted.txt.bak") || o.path == p("other.txt/x")
					if ev != nil && ev.Failed() != failing {
						t.Errorf("%v %s %s: result %d", ty, o.op, o.path, ev.Res)
					}
					if !want {
						dropped++
					}
				}
			}
			st := col.c.Stats()
			if withFilter && st.Filtered < uint64(dropped+1) {
				t.Errorf("Filtered=%d, want at least %d", st.Filtered, dropped+1)
			}
			// Most drops here are decided on the dentries (other.txt,
			// a/zy, m/sub/other, the marker, ...): the precheck works.
			if withFilter && (st.FilteredEarly < 4 || st.FilteredEarly > st.Filtered) {
				t.Errorf("FilteredEarly=%d of Filtered=%d, want at least 4", st.FilteredEarly, st.Filtered)
			}
			if !withFilter && (st.Filtered != 0 || st.FilteredEarly != 0) {
				t.Errorf("Filtered=%d FilteredEarly=%d without a filter", st.Filtered, st.FilteredEarly)
			}
		})
	}
}

// TestFilterPrechecks checks that the conditions the kernel tests before
// its map lookups (prefix_first, name_lens, name_first) are necessary: for
// paths built from the filters' own prefixes, names and texts, every
// prefix or name entry that lets an open pass is looked up.
func TestFilterPrechecks(t *testing.T) {
	var filters []*Filter
	for _, files := range [][]string{
		{"../../rules"},
		{"../../testdata/falco-rules/falco_rules.yaml", "../../testdata/falco-rules/falco-incubating_rules.yaml"},
	} {
		rs, _, err := rules.LoadFiles(files, rules.Options{Captured: Capturable()})
		if err != nil {
			t.Fatal(err)
		}
		filters = append(filters, benchFilter(rs.KernelFilter()))
	}
	// Prefixes the rules do not write: the root, one not starting with
	// '/', one byte after it.
	odd := &Filter{}
	for _, ty := range event.ClassOpen.Types() {
		odd.Open = append(odd.Open, OpenFilter{Type: ty, Terms: []OpenTerm{
			{Read: true, Success: true, Prefixes: []string{"/"}},
			{Write: true, Success: true, Prefixes: []string{"etc", "/e", "/usr/lib/"}, Names: []string{"", "a", ".bashrc"}},
		}})
	}
	filters = append(filters, odd)

	for i, f := range filters {
		tb, err := buildFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		var words []string
		for w := range tb.prefixes {
			words = append(words, w)
		}
		for w := range tb.names {
			words = append(words, w)
		}
		for w := range tb.contains {
			words = append(words, w)
		}
		rng := rand.New(rand.NewPCG(7, uint64(i)))
		w := func() string { return words[rng.IntN(len(words))] }
		looked := 0
		for range 20000 {
			var path string
			switch rng.IntN(4) {
			case 0:
				path = w()
			case 1:
				s := w()
				path = s[:rng.IntN(len(s)+1)]
			case 2:
				path = "/" + strings.TrimPrefix(w(), "/") + "/" + w()
			default:
				path = "/home/u/" + w()
			}
			path = "/" + strings.TrimLeft(path, "/") // resolved paths start with '/'
			if len(path) > FilterPrefixMax {
				path = path[:FilterPrefixMax]
			}
			name := path[strings.LastIndexByte(path, '/')+1:]
			for bit := range uint(64) {
				b := uint64(1) << bit
				if tb.cfg.Types&(1<<(bit/4)) == 0 || tb.cfg.AnyPath&b != 0 {
					continue
				}
				b1 := byte(0)
				if len(path) > 1 {
					b1 = path[1]
				}
				for p, bits := range tb.prefixes {
					if bits&b != 0 && strings.HasPrefix(path, p) {
						looked++
						if tb.cfg.PrefixFirst[b1]&b == 0 {
							t.Fatalf("filter %d: %q starts with prefix %q (bits %#x) but prefix_first[%q] lacks bit %d", i, path, p, bits, b1, bit)
						}
					}
				}
				if bits := tb.names[name]; bits&b != 0 {
					looked++
					if tb.cfg.NameLens&(1<<len(name)) == 0 || (name != "" && tb.cfg.NameFirst[name[0]>>6]&(1<<(name[0]&63)) == 0) {
						t.Fatalf("filter %d: name %q of %q (bits %#x) fails name_lens/name_first", i, name, path, bits)
					}
				}
			}
		}
		if looked < 1000 {
			t.Errorf("filter %d: weak test, only %d lookups that pass", i, looked)
		}
	}
}

// TestFilterErrnos checks how failure terms fill the errno table: errnos
// below FilterErrnoMax each get the term's bits; no errnos, or one the
// table cannot hold, let every failure pass.
func TestFilterErrnos(t *testing.T) {
	ty := event.TypeOpenat
	ro := kfBit(ty, accRO) | kfBit(ty, accRW)
	for _, tc := range []struct {
		errnos   []int
		failPass uint64
		table    map[int]uint64
	}{
		{nil, ro, nil},
		{[]int{13, 1}, 0, map[int]uint64{1: ro, 13: ro}},
		{[]int{13, FilterErrnoMax}, ro, nil},
		{[]int{0}, ro, nil},
	} {
		f := &Filter{Open: []OpenFilter{{Type: ty, Terms: []OpenTerm{{Read: true, Failure: true, Errnos: tc.errnos}}}}}
		tb, err := buildFilter(f)
		if err != nil {
			t.Fatal(err)
		}
		if tb.cfg.FailPass != tc.failPass {
			t.Errorf("%v: fail_pass %#x, want %#x", tc.errnos, tb.cfg.FailPass, tc.failPass)
		}
		for e, got := range tb.cfg.FailErrno {
			if got != tc.table[e] {
				t.Errorf("%v: fail_errno[%d] %#x, want %#x", tc.errnos, e, got, tc.table[e])
			}
		}
	}
}

// TestKernelFilterFailDrop checks that the failures of the FailDrop types
// are dropped in the kernel, counted, and their successes sent.
func TestKernelFilterFailDrop(t *testing.T) {
	testenv.RequireRoot(t)
	dir := realDir(t)
	filter := &Filter{FailDrop: []event.Type{event.TypeExecve, event.TypeMkdirat}}
	col := startCapture(t, Config{PID: uint32(os.Getpid()), IncludeSelf: true,
		Types: []event.Type{event.TypeExecve, event.TypeMkdirat, event.TypeUnlinkat}, Filter: filter})
	missing := filepath.Join(dir, "no-such-binary")
	if err := exec.Command(missing).Run(); err == nil {
		t.Fatal("exec of a missing file succeeded")
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	for _, d := range []string{sub, sub} { // the second fails: EEXIST
		_ = unix.Mkdir(d, 0o755)
	}
	_ = unix.Rmdir(filepath.Join(dir, "missing")) // unlinkat, ENOENT: not in FailDrop
	_ = unix.Mkdir(filepath.Join(dir, "last"), 0o755)
	col.wait(t, "the last mkdir", func(e *event.Event) bool {
		return e.Type == event.TypeMkdirat && e.Sys.Path == filepath.Join(dir, "last")
	})
	col.wait(t, "the successful exec", func(e *event.Event) bool {
		return e.Type == event.TypeExecve && e.Res == 0 && e.Proc.ExePath == "/usr/bin/true"
	})
	col.wait(t, "the failed rmdir (unlinkat)", func(e *event.Event) bool { return e.Type == event.TypeUnlinkat && e.Failed() })
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"the failed exec was sent", col.find(func(e *event.Event) bool { return e.Type == event.TypeExecve && e.Failed() }) == nil},
		{"the failed mkdir was sent", col.find(func(e *event.Event) bool { return e.Type == event.TypeMkdirat && e.Failed() }) == nil},
		{"the first mkdir was not sent", col.find(func(e *event.Event) bool {
			return e.Type == event.TypeMkdirat && e.Sys.Path == sub && !e.Failed()
		}) != nil},
	} {
		if !c.ok {
			t.Error(c.what)
		}
	}
	st := col.c.Stats()
	if st.FilteredByType[event.TypeExecve] == 0 || st.FilteredByType[event.TypeMkdirat] == 0 {
		t.Errorf("filtered execve %d, mkdir %d; want each counted", st.FilteredByType[event.TypeExecve], st.FilteredByType[event.TypeMkdirat])
	}
}
