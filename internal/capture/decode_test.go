package capture

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// rec builds a raw record as the BPF side writes it: fields are set at
// their struct tl_event offsets and bytes() lays out the wire sections.
type rec struct {
	b       []byte
	data    []byte
	compact bool // no identity section: (tid, gen) name a cached one
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

// ident makes r a record that names the identity (tid, gen) without
// carrying it.
func (r *rec) ident(tid, gen, epoch uint32) *rec {
	r.u32(offTid, tid).u32(offGen, gen).u32(offEpoch, epoch)
	return r
}

// noIdent leaves out the identity section.
func (r *rec) noIdent() *rec { r.compact = true; return r }

func (r *rec) bytes() []byte {
	r.u16(offDataLen, uint16(len(r.data)))
	flags := binary.LittleEndian.Uint32(r.b[offFlags:])
	if r.compact {
		flags &^= recIdent
	} else {
		flags |= recIdent
	}
	binary.LittleEndian.PutUint32(r.b[offFlags:], flags)
	out := slices.Clone(r.b[:wireHdr])
	if !r.compact {
		out = append(out, r.b[offPid:offChildPid]...)
	}
	off, n := wireSection(event.Type(r.b[offType]))
	out = append(out, r.b[off:off+n]...)
	return append(out, r.data...)
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
		"empty":       nil,
		"short":       good[:wireHdr-1],
		"short ident": good[:wireHdr+identSize-1],
		"no ident":    func() []byte { b := slices.Clone(good); b[offFlags+2] &^= recIdent >> 16; return b }(),
		"bad abi":     func() []byte { b := slices.Clone(good); b[offAbi] = 99; return b }(),
		"unknown":     func() []byte { b := slices.Clone(good); b[offType] = 0; return b }(),
		"type range":  func() []byte { b := slices.Clone(good); b[offType] = 200; return b }(),
		"data_len":    func() []byte { b := slices.Clone(good); binary.LittleEndian.PutUint16(b[offDataLen:], 500); return b }(),
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

// TestDecodeSys checks the generic record of the types after TypeProcexit.
func TestDecodeSys(t *testing.T) {
	d := decoder{}
	var ev event.Event
	sa4 := func(port uint16, ip ...byte) string {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint16(b, event.AFInet)
		binary.BigEndian.PutUint16(b[2:], port)
		copy(b[4:], ip)
		return string(b)
	}
	for _, c := range []struct {
		name  string
		r     *rec
		check func(ev *event.Event) bool
	}{
		{"renameat2: both paths joined to their bases", newRec(event.TypeRenameat2).u32(offFlags, recPathIsBase|recPath2IsBase).
			u64(offArgs+8*4, 1).u32(offSockFd, ^uint32(0)).
			str(strRaw, "a").str(strPath, "/home/u").str(strRaw2, "../b").str(strPath2, "/tmp/x"),
			func(ev *event.Event) bool {
				s := &ev.Sys
				return s.Path == "/home/u/a" && s.Path2 == "/tmp/b" && s.RawPath2 == "../b" && s.Args[4] == 1 && s.FD == -1
			}},
		{"symlink: the target is not a path", newRec(event.TypeSymlink).u32(offFlags, recPath2IsBase).
			str(strRaw, "/etc/shadow").str(strRaw2, "l").str(strPath2, "/"),
			func(ev *event.Event) bool {
				return ev.Sys.Path == "" && ev.Sys.RawPath == "/etc/shadow" && ev.Sys.Path2 == "/l"
			}},
		{"unlink: an absolute path is cleaned", newRec(event.TypeUnlink).str(strRaw, "/tmp/../etc//x"),
			func(ev *event.Event) bool { return ev.Sys.Path == "/etc/x" }},
		{"fchmod: the fd's file", newRec(event.TypeFchmod).u32(offFlags, recFDFile).u32(offSockFd, 4).u64(offIno, 9).
			str(strPath, "/tmp/f"),
			func(ev *event.Event) bool {
				return ev.Sys.FDKind == event.FDFile && ev.Sys.FDPath == "/tmp/f" && ev.Sys.FD == 4 && ev.Open.Ino == 9 && ev.Sys.Path == ""
			}},
		{"failed bind: the address asked for is local", newRec(event.TypeBind).u64(offRes, ^uint64(97)).u32(offFlags, recFDSock).
			u16(offFamily, event.AFInet).u16(offSockType, 1).u16(offProto, event.ProtoTCP).str(strAux, sa4(8080, 127, 0, 0, 1)),
			func(ev *event.Event) bool {
				c := &ev.Connect
				return c.LocalPort == 8080 && c.LocalAddr.String() == "127.0.0.1" && c.RemotePort == 0 && c.Proto == event.ProtoTCP
			}},
		{"sendto: the destination is remote", newRec(event.TypeSendto).u32(offFlags, recFDSock).
			u16(offFamily, event.AFInet).u16(offSockType, 2).u16(offProto, event.ProtoUDP).u16(offLport, 5000).
			str(strAux, sa4(53, 10, 0, 0, 1)),
			func(ev *event.Event) bool {
				c := &ev.Connect
				return c.RemotePort == 53 && c.RemoteAddr.String() == "10.0.0.1" && c.LocalPort == 5000
			}},
		{"mount: source raw, target joined, type", newRec(event.TypeMount).u32(offFlags, recPath2IsBase).
			str(strRaw, "proc").str(strRaw2, "p").str(strPath2, "/mnt").str(strAux, "proc"),
			func(ev *event.Event) bool {
				s := &ev.Sys
				return s.Path == "" && s.RawPath == "proc" && s.Path2 == "/mnt/p" && s.Aux == "proc"
			}},
		{"failed socket: the requested domain", newRec(event.TypeSocket).u64(offRes, ^uint64(96)).
			u64(offArgs, 17).u64(offArgs+8, 3|0o2000000),
			func(ev *event.Event) bool { return ev.Connect.Family == 17 && ev.Connect.SockType == 3 }},
	} {
		if err := d.decode(c.r.bytes(), &ev); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !c.check(&ev) {
			t.Errorf("%s: %+v %+v", c.name, ev.Sys, ev.Connect)
		}
	}
	// A type beyond the kernel's is malformed.
	if err := d.decode(newRec(event.TypeContainer).bytes(), &ev); err == nil {
		t.Error("container record accepted")
	}
}
