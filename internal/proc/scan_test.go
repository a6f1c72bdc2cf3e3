package proc

import (
	"testing"

	"github.com/tripline/tripline/internal/event"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		in   string
		ok   bool
		comm string
		ppid uint32
	}{
		{"1 (systemd) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12 1 2 3", true, "systemd", 0},
		{"42 (a) b) (c) R 7 42 42 34816 42 0 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0", true, "a) b) (c", 7},
		{"42 (x) R 7 42", false, "", 0},
		{"", false, "", 0},
		{"42 x) R 7", false, "", 0},
		{"42 (x) R -7 42 42 0 42 0 0 0 0 0 0 0 0 0 20 0 1 0 999", false, "", 0},
	} {
		f, err := parseStat([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if tc.ok && (f.comm != tc.comm || f.ppid != tc.ppid) {
			t.Errorf("%q: %+v", tc.in, f)
		}
	}
}

func TestCaptureCgroupPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"4:memory:/process_api/fe82\n1:cpu:/\n0::/\n", "/process_api/fe82"},
		{"9:name=systemd:/default/t1\n4:memory:/default/t1\n0::/default/t1\n", "/default/t1"},
		{"0::/kubepods.slice/x.scope\n", "/kubepods.slice/x.scope"},
		{"0::/\n", "/"},
		{"4:cpu,memory:/a:b\n", "/a:b"},
	} {
		if got, _ := CaptureCgroupPath([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: got %q want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	var p event.Process
	err := parseStatus([]byte("Name:\tsh\nUid:\t1 2 3 4\nGid:\t5 6 7 8\nCapEff:\t000001ffffffffff\nNSpid:\t900\t7\n"), &p)
	if err != nil || p.UID != 1 || p.EUID != 2 || p.GID != 5 || p.EGID != 6 || p.CapEffective != 0x1ffffffffff || p.VPID != 7 {
		t.Errorf("%v %+v", err, p)
	}
	if err := parseStatus([]byte("Uid:\tx\n"), &p); err == nil {
		t.Error("malformed Uid accepted")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1 (systemd) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 12 1 2 3"))
	f.Add([]byte("42 (a) b) R 7 42 42 34816 42 0 0 0 0 0 0 0 0 0 20 0 1 0 999"))
	f.Add([]byte("(("))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStat(b)
		_, _ = CaptureCgroupPath(b)
		var p event.Process
		_ = parseStatus(b, &p)
		_ = splitCmdline(b)
	})
}
