//go:build linux && (amd64 || arm64)

package capture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/event"
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
	for _, d := range []string{"a/deep/dir", "a/xdeep/dir", "a/deeper"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"other.txt", "wanted.txt", "w/x", "a/deep/dir/f", "a/xdeep/dir/f", "a/deeper/f"} {
		writeFile(t, filepath.Join(dir, n), "x", 0o644)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	var filter Filter
	for _, ty := range event.ClassOpen.Types() {
		filter.Open = append(filter.Open, OpenFilter{Type: ty, Terms: []OpenTerm{
			{Write: true, Success: true, Prefixes: []string{wdir + "/"}},
			{Read: true, Success: true, Names: []string{"wanted.txt"}},
			{Read: true, Success: true, Contains: []string{"/deep/dir/"}},
		}})
	}
	ops := []struct {
		op   string
		path string
		pass bool
	}{
		{"r", p("other.txt"), false},      // no prefix, no name
		{"r", p("w/x"), false},            // the prefix wants writes
		{"r", p("missing.txt"), false},    // failed: every term wants success
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
	}
	var list []string
	for _, o := range ops {
		list = append(list, o.op+":"+o.path)
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
					if e.Proc.PID == pid && e.Open.Path == p("wanted.txt") && e.Open.Flags&3 == 0 {
						n++
					}
				}
				return n == 2
			}, "the helper's last open did not arrive")
			dropped := 0
			for _, o := range ops {
				got := col.find(func(e *event.Event) bool {
					return e.Class() == event.ClassOpen && e.Proc.PID == pid && e.Open.Path == o.path &&
						(e.Open.Flags&3 != 0) == (o.op == "w")
				}) != nil
				want := o.pass || !withFilter
				if got != want {
					t.Errorf("%s %s: sent=%v, want %v", o.op, o.path, got, want)
				}
				if !want {
					dropped++
				}
			}
			st := col.c.Stats()
			if withFilter && st.Filtered < uint64(dropped+1) {
				t.Errorf("Filtered=%d, want at least %d", st.Filtered, dropped+1)
			}
			if !withFilter && st.Filtered != 0 {
				t.Errorf("Filtered=%d without a filter", st.Filtered)
			}
		})
	}
}
