//go:build linux && (amd64 || arm64)

package capture

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/testenv"
)

// TestKernelFilterFiles makes real unlinkat, renameat2 and fchmodat calls
// and checks which the file-change filter sends: by the bits of a mode, by
// the file name of a path as passed (relative or absolute, at the 63-byte
// limit and past it), the names that resolving changes (".", "..", a
// trailing '/'), the second path's names, and any change from a process
// outside the host's mount namespace.
func TestKernelFilterFiles(t *testing.T) {
	host, unshare := mountNSTools(t)
	long63 := strings.Repeat("h", 63)
	long64 := strings.Repeat("h", 64)
	filter := &Filter{HostMntNS: host, File: []FileFilter{
		{Type: event.TypeUnlinkat, Terms: []FileTerm{
			{Names: [2][]string{{".bash_history", long63}, nil}},
			{Container: true},
		}},
		{Type: event.TypeRenameat2, Terms: []FileTerm{{Names: [2][]string{nil, {"target.txt"}}}}},
		{Type: event.TypeFchmodat, Terms: []FileTerm{{FlagReg: 2, Flags: 0o6000}}},
	}}
	types := append(Lifecycle(), event.TypeUnlinkat, event.TypeRenameat2, event.TypeFchmodat)
	dir := realDir(t)
	dfd := dirFD(t, dir)

	type call struct {
		name string
		typ  event.Type
		raw  string // the first path as passed, which identifies the event
		do   func() uint32
		pass bool // with the filter
	}
	self := uint32(os.Getpid())
	unlink := func(path string, flags int) func() uint32 {
		return func() uint32 { unix.Unlinkat(dfd, path, flags); return self }
	}
	rename := func(from, to string) func() uint32 {
		return func() uint32 { unix.Renameat2(dfd, from, dfd, to, 0); return self }
	}
	chmod := func(path string, mode uint32) func() uint32 {
		return func() uint32 { unix.Fchmodat(dfd, path, mode, 0); return self }
	}
	rm := func(args ...string) func() uint32 {
		return func() uint32 {
			cmd := exec.Command(args[0], args[1:]...)
			cmd.Run() // the file does not exist: rm fails, its unlinkat is reported
			return uint32(cmd.ProcessState.Pid())
		}
	}
	calls := []call{
		{"absolute, listed name", event.TypeUnlinkat, dir + "/a/.bash_history", unlink(dir+"/a/.bash_history", 0), true},
		{"absolute, other name", event.TypeUnlinkat, dir + "/a/notes.txt", unlink(dir+"/a/notes.txt", 0), false},
		{"relative, listed name", event.TypeUnlinkat, "sub/.bash_history", unlink("sub/.bash_history", 0), true},
		{"relative, other name", event.TypeUnlinkat, "sub/.bash_historyx", unlink("sub/.bash_historyx", 0), false},
		{"bare listed name of 63 bytes", event.TypeUnlinkat, long63, unlink(long63, 0), true},
		{"listed name of 63 bytes below a directory", event.TypeUnlinkat, "d/" + long63, unlink("d/"+long63, 0), true},
		{"name of 64 bytes", event.TypeUnlinkat, "d/" + long64, unlink("d/"+long64, 0), false},
		{"ends in ..", event.TypeUnlinkat, "sub/..", unlink("sub/..", unix.AT_REMOVEDIR), true},
		{"ends in .", event.TypeUnlinkat, "sub/.", unlink("sub/.", unix.AT_REMOVEDIR), true},
		{"ends in /", event.TypeUnlinkat, "sub/", unlink("sub/", unix.AT_REMOVEDIR), true},
		{"second path named", event.TypeRenameat2, "x.txt", rename("x.txt", "target.txt"), true},
		{"first path named as the second's list", event.TypeRenameat2, "target.txt", rename("target.txt", "y.txt"), false},
		{"mode with the setuid bit", event.TypeFchmodat, "m1", chmod("m1", 0o4755), true},
		{"mode with the setgid bit", event.TypeFchmodat, "m2", chmod("m2", 0o2700), true},
		{"mode without either", event.TypeFchmodat, "m3", chmod("m3", 0o1777), false},
		{"host process, other name", event.TypeUnlinkat, dir + "/host-rm", rm("rm", dir+"/host-rm"), false},
		{"process in its own mount namespace, other name", event.TypeUnlinkat, dir + "/ns-rm", rm(unshare, "-m", "rm", dir+"/ns-rm"), true},
	}
	withAndWithout(t, Config{PID: self, IncludeSelf: true, Types: types}, filter, func(t *testing.T, col *collector, withFilter bool) {
		of := func(typ event.Type, pid uint32, raw string) func(*event.Event) bool {
			return func(e *event.Event) bool { return e.Type == typ && e.Proc.PID == pid && e.Sys.RawPath == raw }
		}
		pids := make([]uint32, len(calls))
		for i, c := range calls {
			pids[i] = c.do()
		}
		// Sent last and always: once it is read, so is every earlier
		// record (the ring keeps the order of writes).
		end := filepath.Join(dir, "end", ".bash_history")
		unix.Unlinkat(dfd, end, 0)
		col.wait(t, "the last unlinkat", of(event.TypeUnlinkat, self, end))
		for i, c := range calls {
			want := c.pass || !withFilter
			if got := col.find(of(c.typ, pids[i], c.raw)) != nil; got != want {
				t.Errorf("%s (%s %q): sent=%v, want %v", c.name, c.typ, c.raw, got, want)
			}
		}
		st := col.c.Stats()
		if n := st.FilteredByType[event.TypeUnlinkat]; withFilter && n < 3 {
			t.Errorf("%d unlinkat counted as filtered, want at least 3", n)
		}
	})
}

// TestKernelFilterFilesDefaults checks the kernel against the rules'
// reference decision (rules.KernelFilter.Passes) with the default rules:
// each file change is made once without the filter, to read the event the
// reference decides on, and once with it.
func TestKernelFilterFilesDefaults(t *testing.T) {
	testenv.RequireRoot(t)
	host, err := HostMntNS()
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{Captured: Capturable()})
	if err != nil {
		t.Fatal(err)
	}
	kf := rs.KernelFilter()
	filter := RulesFilter(kf)
	filter.HostMntNS = host
	if len(filter.File) == 0 {
		t.Fatal("the default rules filter no file-change type")
	}
	dir := realDir(t)
	dfd := dirFD(t, dir)
	type change struct {
		typ      event.Type
		from, to string // to: renames only
		mode     uint32 // fchmodat only
	}
	changes := []change{
		{event.TypeUnlinkat, "home/.bash_history", "", 0},
		{event.TypeUnlinkat, dir + "/notes.txt", "", 0},
		{event.TypeUnlinkat, ".zsh_history", "", 0},
		{event.TypeUnlinkat, "fish_history/..", "", 0},
		{event.TypeRenameat2, "tmp123", ".bash_history", 0},
		{event.TypeRenameat2, "x/.ash_history", "y", 0},
		{event.TypeRenameat2, "a.tmp", "a", 0},
		{event.TypeRenameat2, "shadow", "b", 0},
		{event.TypeFchmodat, "mode-suid", "", 0o4755},
		{event.TypeFchmodat, "mode-sgid", "", 0o2755},
		{event.TypeFchmodat, "mode-plain", "", 0o755},
	}
	for _, c := range changes {
		if c.typ == event.TypeFchmodat { // a failed chmod is dropped: no rule wants one
			writeFile(t, filepath.Join(dir, c.from), "x", 0o644)
		}
	}
	// run makes the changes, each with a distinct first path, and
	// returns their events once the last has arrived.
	run := func(t *testing.T, f *Filter, round string) []*event.Event {
		col := startCapture(t, Config{PID: uint32(os.Getpid()), IncludeSelf: true,
			Types: []event.Type{event.TypeUnlinkat, event.TypeRenameat2, event.TypeFchmodat}, Filter: f})
		for _, c := range changes {
			switch c.typ {
			case event.TypeUnlinkat:
				unix.Unlinkat(dfd, c.from, 0)
			case event.TypeRenameat2:
				unix.Renameat2(dfd, c.from, dfd, c.to, 0)
			default:
				if err := unix.Fchmodat(dfd, c.from, c.mode, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
		end := filepath.Join(dir, round, ".bash_history")
		unix.Unlinkat(dfd, end, 0)
		col.wait(t, "the last unlinkat", func(e *event.Event) bool { return e.Type == event.TypeUnlinkat && e.Sys.RawPath == end })
		out := make([]*event.Event, len(changes))
		for i, c := range changes {
			out[i] = col.find(func(e *event.Event) bool { return e.Type == c.typ && e.Sys.RawPath == c.from })
		}
		return out
	}
	all := run(t, nil, "all")
	sent := run(t, filter, "filtered")
	passed, dropped := 0, 0
	for i, c := range changes {
		if all[i] == nil {
			t.Fatalf("%s %q: no event without the filter", c.typ, c.from)
		}
		want := kf.Passes(all[i], true)
		if got := sent[i] != nil; got != want {
			t.Errorf("%s %q -> %q: sent=%v, the rules' reference says %v", c.typ, c.from, c.to, got, want)
		}
		if want {
			passed++
		} else {
			dropped++
		}
	}
	if passed < 3 || dropped < 3 {
		t.Errorf("weak test: %d changes pass and %d are dropped", passed, dropped)
	}
}

// dirFD opens dir for the *at calls, until the end of the test.
func dirFD(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}
