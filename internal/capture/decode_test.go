package capture

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// rec builds a raw record as the BPF side writes it.
type rec struct {
	b    []byte
	data []byte
	nstr int
}

func newRec(typ event.Type) *rec {
	r := &rec{b: make([]byte, hdrSize)}
	r.b[offType] = byte(typ)
	r.b[offAbi] = abiVersion
	return r
}

func (r *rec) u32(off int, v uint32) *rec { binary.LittleEndian.PutUint32(r.b[off:], v); return r }
func (r *rec) u64(off int, v uint64) *rec { binary.LittleEndian.PutUint64(r.b[off:], v); return r }
func (r *rec) u16(off int, v uint16) *rec { binary.LittleEndian.PutUint16(r.b[off:], v); return r }

func (r *rec) str(idx int, s string) *rec {
	r.u16(offStr+4*idx, uint16(len(r.data)))
	r.u16(offStr+4*idx+2, uint16(len(s)))
	r.data = append(r.data, s...)
	return r
}

func (r *rec) bytes() []byte {
	r.u16(offDataLen, uint16(len(r.data)))
	return append(slices.Clone(r.b), r.data...)
}

func TestDecode(t *testing.T) {
	d := decoder{bootOffset: 1000}
	var ev event.Event

	r := newRec(event.TypeOpenat).u64(offTs, 5).u64(offRes, 3).u32(offPid, 42).u32(offTid, 43).
		u32(offDirfd, uint32(0xffffff9c)).u32(offOflags, 0o2000000).u64(offStartTime, 7)
	copy(r.b[offComm:], "cat\x00junk")
	r.str(strPath, "/etc/shadow").str(strRaw, "../etc/shadow")
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != event.TypeOpenat || ev.Timestamp != 1005 || ev.Res != 3 || ev.Proc.PID != 42 || ev.Proc.TID != 43 ||
		ev.Proc.Comm != "cat" || ev.Open.Path != "/etc/shadow" || ev.Open.RawPath != "../etc/shadow" ||
		ev.Open.DirFD != -100 || ev.Proc.StartTime != 1007 {
		t.Errorf("open: %+v", ev)
	}

	// Failed relative open: the path is joined to the base dir and cleaned.
	for _, c := range []struct{ base, raw, want string }{
		{"/home/u", "sub/../missing", "/home/u/missing"},
		{"/", "../../x", "/x"},
		{"/a/b", "./c/./d/", "/a/b/c/d"},
		{"/a", "..", "/"},
	} {
		r := newRec(event.TypeOpenat).u64(offRes, ^uint64(1)).u32(offFlags, recPathIsBase).str(strPath, c.base).str(strRaw, c.raw)
		if err := d.decode(r.bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Open.Path != c.want || ev.Res != -2 {
			t.Errorf("join(%q,%q)=%q res=%d, want %q", c.base, c.raw, ev.Open.Path, ev.Res, c.want)
		}
	}

	r = newRec(event.TypeExecve).u32(offFlags, recArgvTrunc|recExeMemfd).
		str(strExe, "/usr/bin/true").str(strArgv, "true\x00-a\x00\x00b\x00").str(strCwd, "/root").str(strCgroup, "/kubepods/x")
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.Proc.Argv, []string{"true", "-a", "", "b"}) || ev.Proc.ExePath != "/usr/bin/true" ||
		ev.Proc.Cwd != "/root" || ev.Proc.CgroupPath != "/kubepods/x" || !ev.Proc.ExeFromMemfd ||
		ev.Flags != event.FlagArgvTruncated {
		t.Errorf("exec: %+v", ev.Proc)
	}
	if ev.Proc.Env != nil {
		t.Errorf("exec without environment: Env %q", ev.Proc.Env)
	}
	r = newRec(event.TypeExecve).u32(offFlags, recEnvTrunc).str(strArgv, "env").str(strEnv, "A=1\x00B=x=y\x00PART")
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ev.Proc.Env, []string{"A=1", "B=x=y", "PART"}) || ev.Flags != event.FlagEnvTruncated {
		t.Errorf("exec environment %q flags %v", ev.Proc.Env, ev.Flags)
	}

	sa := make([]byte, 16)
	binary.LittleEndian.PutUint16(sa, event.AFInet)
	binary.BigEndian.PutUint16(sa[2:], 443)
	copy(sa[4:], []byte{10, 0, 0, 1})
	r = newRec(event.TypeConnect).u16(offFamily, event.AFInet).u16(offProto, 6).u16(offLport, 5555).str(strRaw, string(sa))
	copy(r.b[offLaddr:], []byte{127, 0, 0, 1})
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	c := ev.Connect
	if c.RemoteAddr.String() != "10.0.0.1" || c.RemotePort != 443 || c.LocalAddr.String() != "127.0.0.1" || c.LocalPort != 5555 || c.Proto != 6 {
		t.Errorf("connect: %+v", c)
	}
	// When the socket has a destination it wins over the caller's sockaddr
	// (which a racing thread may have rewritten after the call).
	copy(r.b[offRaddr:], []byte{192, 0, 2, 7})
	binary.LittleEndian.PutUint16(r.b[offRport:], 8080)
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if c := ev.Connect; c.RemoteAddr.String() != "192.0.2.7" || c.RemotePort != 8080 {
		t.Errorf("connect with socket destination: %+v", c)
	}

	un := append([]byte{1, 0, 0}, "abstract"...)
	r = newRec(event.TypeConnect).u16(offFamily, event.AFUnix).str(strRaw, string(un))
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Connect.UnixPath != "@abstract" {
		t.Errorf("unix path %q", ev.Connect.UnixPath)
	}

	r = newRec(event.TypeProcexit).u32(offExitCode, 7<<8).u32(offFlags, recThread)
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Exit.Code != 7 || ev.Exit.Signal != 0 || !ev.Exit.Thread {
		t.Errorf("exit: %+v", ev.Exit)
	}
	r = newRec(event.TypeClone).u32(offChildPid, 9).u32(offChildTid, 10).u64(offCloneFl, 0x10000).u32(offFlags, recThread)
	if err := d.decode(r.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Fork != (event.Fork{ChildPID: 9, ChildTID: 10, CloneFlags: 0x10000, IsThread: true}) {
		t.Errorf("fork: %+v", ev.Fork)
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := newRec(event.TypeOpenat).str(strPath, "/x").bytes()
	cases := map[string][]byte{
		"empty":      nil,
		"short":      good[:hdrSize-1],
		"bad abi":    func() []byte { b := slices.Clone(good); b[offAbi] = 99; return b }(),
		"unknown":    func() []byte { b := slices.Clone(good); b[offType] = 0; return b }(),
		"type range": func() []byte { b := slices.Clone(good); b[offType] = 200; return b }(),
		"data_len":   func() []byte { b := slices.Clone(good); binary.LittleEndian.PutUint16(b[offDataLen:], 500); return b }(),
		"str offset": func() []byte {
			b := slices.Clone(good)
			binary.LittleEndian.PutUint16(b[offStr+4*strPath:], 1)
			return b
		}(),
		"str length": func() []byte {
			b := slices.Clone(good)
			binary.LittleEndian.PutUint16(b[offStr+4*strPath+2:], 0xffff)
			return b
		}(),
		"truncated": good[:len(good)-1],
		"huge dl": func() []byte {
			b := slices.Clone(good)
			binary.LittleEndian.PutUint16(b[offDataLen:], 0xffff)
			return b
		}(),
		"short unix":  newRec(event.TypeConnect).u16(offFamily, event.AFUnix).str(strRaw, "\x01").bytes(),
		"short inet6": newRec(event.TypeConnect).u16(offFamily, event.AFInet6).str(strRaw, "\x0a\x00\x01").bytes(),
	}
	var d decoder
	var ev event.Event
	if err := d.decode(good, &ev); err != nil {
		t.Fatalf("good record rejected: %v", err)
	}
	for name, b := range cases {
		err := d.decode(b, &ev)
		switch name {
		case "short unix", "short inet6": // valid records with odd sockaddrs: decoded, no panic
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		default:
			if err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(newRec(event.TypeOpenat).str(strPath, "/x").str(strRaw, "x").bytes())
	f.Add(newRec(event.TypeExecve).str(strArgv, "a\x00b").str(strExe, "/bin/a").bytes())
	f.Add(newRec(event.TypeConnect).u16(offFamily, event.AFUnix).str(strRaw, "\x01\x00\x00ab").bytes())
	f.Add(newRec(event.TypeOpenat).u32(offFlags, recPathIsBase).u64(offRes, ^uint64(0)).str(strPath, "/a").str(strRaw, "../../b").bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		var ev event.Event
		if d.decode(b, &ev) != nil {
			return
		}
		if ev.Type == event.TypeUnknown || ev.Type >= event.TypeContainer {
			t.Fatalf("decoded type %v", ev.Type)
		}
		if ev.Class() == event.ClassOpen && ev.Open.Path != "" && ev.Open.Path[0] == '/' && len(ev.Open.Path) > 1 && ev.Open.Path[len(ev.Open.Path)-1] == '/' && ev.Open.Path != ev.Open.RawPath {
			// joinClean never leaves a trailing slash
			if ev.Res < 0 {
				t.Fatalf("uncleaned path %q", ev.Open.Path)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	recs := [][]byte{
		newRec(event.TypeOpenat).u64(offRes, 3).str(strPath, "/usr/lib/x86_64-linux-gnu/libc.so.6").str(strRaw, "/lib/x86_64-linux-gnu/libc.so.6").bytes(),
		newRec(event.TypeExecve).str(strExe, "/usr/bin/bash").str(strArgv, "bash\x00-c\x00echo hello world\x00").str(strCwd, "/home/user").str(strCgroup, "/system.slice/docker-0123456789abcdef.scope").str(strRaw, "/bin/bash").str(strEnv, "PATH=/usr/bin\x00HOME=/root\x00").bytes(),
		newRec(event.TypeConnect).u16(offFamily, event.AFInet).str(strRaw, "\x02\x00\x01\xbb\x0a\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00").bytes(),
		newRec(event.TypeOpenat).u32(offFlags, recPathIsBase).u64(offRes, ^uint64(1)).str(strPath, "/home/user").str(strRaw, "a/../b.txt").bytes(),
	}
	var d decoder
	var ev event.Event
	for _, r := range recs { // warm the arena and argv slice
		_ = d.decode(r, &ev)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := d.decode(recs[i%len(recs)], &ev); err != nil {
			b.Fatal(err)
		}
	}
}
