package capture

import (
	"errors"
	"reflect"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// withIdent sets an identity on r.
func withIdent(r *rec, tid, gen, uid uint32, comm string) *rec {
	r.ident(tid, gen, 0).u32(offPid, tid).u32(offUID, uid).u32(offEUID, uid).u64(offCapEff, 0x1ff).
		u64(offMntNS, 4026531841).u64(offCgroupID, 77).u64(offStartTime, 5)
	copy(r.b[offComm:offComm+16], make([]byte, 16))
	copy(r.b[offComm:], comm)
	return r
}

// TestDecodeCompactSame: a record without identity decodes to the same
// event as the full record once the identity is cached, for every section.
func TestDecodeCompactSame(t *testing.T) {
	recs := map[string]func() *rec{
		"open": func() *rec {
			return newRec(event.TypeOpenat).u64(offRes, 3).u32(offDirfd, 5).u32(offOflags, 0o101).u64(offIno, 9).
				str(strPath, "/etc/shadow").str(strRaw, "shadow")
		},
		"exec": func() *rec {
			return newRec(event.TypeExecve).str(strExe, "/bin/sh").str(strArgv, "sh\x00-c").str(strCgroup, "/x")
		},
		"connect": func() *rec {
			r := newRec(event.TypeConnect).u32(offSockFd, 4).u16(offFamily, event.AFInet).u16(offRport, 443).u16(offLport, 999)
			copy(r.b[offRaddr:], []byte{10, 0, 0, 1})
			return r
		},
		"fork": func() *rec {
			return newRec(event.TypeClone).u32(offChildPid, 9).u32(offChildTid, 10).u64(offCloneFl, 0x10000).str(strCgroup, "/y")
		},
		"sys": func() *rec {
			return newRec(event.TypeFchmod).u32(offFlags, recFDFile).u32(offSockFd, 4).u64(offIno, 9).u64(offArgs+8, 0o777).
				str(strPath, "/tmp/f")
		},
		"exit": func() *rec { return newRec(event.TypeProcexit).u32(offExitCode, 3<<8) },
	}
	for name, mk := range recs {
		t.Run(name, func(t *testing.T) {
			var d decoder
			var full, compact event.Event
			if err := d.decode(withIdent(mk(), 42, 7, 1000, "sh").bytes(), &full); err != nil {
				t.Fatal(err)
			}
			want := full.Clone()
			if name == "exit" { // an exit forgets the task: cache it again
				d.idents.put(42, 7, 0, withIdent(mk(), 42, 7, 1000, "sh").b[offPid:offChildPid])
			}
			// A record of another type in between must leave nothing behind.
			if err := d.decode(withIdent(newRec(event.TypeSetns), 43, 8, 0, "x").u64(offArgs, 1).bytes(), &compact); err != nil {
				t.Fatal(err)
			}
			b := withIdent(mk(), 42, 7, 1000, "sh").noIdent().bytes()
			if len(b) >= len(withIdent(mk(), 42, 7, 1000, "sh").bytes()) {
				t.Errorf("compact record of %d bytes is not shorter", len(b))
			}
			if err := d.decode(b, &compact); err != nil {
				t.Fatal(err)
			}
			if got := compact.Clone(); !reflect.DeepEqual(got, want) {
				t.Errorf("compact:\n%+v\nfull:\n%+v", got, want)
			}
			if compact.Proc.UID != 1000 || compact.Proc.Comm != "sh" || compact.Proc.PID != 42 || compact.Proc.CgroupID != 77 {
				t.Errorf("identity %+v", compact.Proc)
			}
		})
	}
}

// TestDecodeIdentity walks the cache through a task's life: identities are
// used only for the (tid, gen, epoch) that sent them, replaced by a newer
// generation, dropped at exit, and never lent to another tid.
func TestDecodeIdentity(t *testing.T) {
	var d decoder
	var ev event.Event
	open := func(tid, gen, uid uint32, full bool) []byte {
		r := withIdent(newRec(event.TypeOpenat).str(strPath, "/x"), tid, gen, uid, "a")
		if !full {
			r.noIdent()
		}
		return r.bytes()
	}
	steps := []struct {
		name    string
		rec     []byte
		wantErr error
		uid     uint32
	}{
		{"unknown task", open(10, 1, 0, false), errNoIdent, 0},
		{"first record carries it", open(10, 1, 1000, true), nil, 1000},
		{"then named by gen", open(10, 1, 0, false), nil, 1000},
		{"other tid", open(11, 1, 0, false), errNoIdent, 0},
		{"gen 0: never cached", open(10, 0, 0, false), errNoIdent, 0},
		{"setuid: new gen", open(10, 2, 0, true), nil, 0},
		{"new gen cached", open(10, 2, 1000, false), nil, 0},
		{"old gen gone", open(10, 1, 0, false), errNoIdent, 0},
		{"other epoch", withIdent(newRec(event.TypeOpenat), 10, 2, 0, "a").ident(10, 2, 1).noIdent().bytes(), errNoIdent, 0},
		{"exit (compact)", withIdent(newRec(event.TypeProcexit), 10, 2, 0, "a").noIdent().bytes(), nil, 0},
		{"after exit", open(10, 2, 0, false), errNoIdent, 0},
		{"tid reused: full", open(10, 3, 33, true), nil, 33},
		{"reused tid's gen", open(10, 3, 0, false), nil, 33},
		{"full without gen: not cached", open(12, 0, 5, true), nil, 5},
		{"so unknown", open(12, 0, 0, false), errNoIdent, 0},
	}
	for _, s := range steps {
		err := d.decode(s.rec, &ev)
		if !errors.Is(err, s.wantErr) {
			t.Fatalf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if err == nil && ev.Proc.UID != s.uid {
			t.Errorf("%s: uid %d, want %d", s.name, ev.Proc.UID, s.uid)
		}
	}
}

// TestIdentCacheBound: past its bound the cache evicts, and an evicted
// task's records are unknown rather than misattributed.
func TestIdentCacheBound(t *testing.T) {
	c := identCache{max: 3}
	id := func(v byte) []byte { b := make([]byte, identSize); b[0] = v; return b }
	for tid := uint32(1); tid <= 5; tid++ {
		c.put(tid, tid+100, 0, id(byte(tid)))
	}
	if c.len() != 3 || len(c.slab) != 3 {
		t.Fatalf("%d entries in %d slots, want 3", c.len(), len(c.slab))
	}
	got := make([]byte, identSize)
	hits := 0
	for tid := uint32(1); tid <= 5; tid++ {
		if c.get(tid, tid+100, 0, got) {
			hits++
			if got[0] != byte(tid) {
				t.Errorf("tid %d got the identity of %d", tid, got[0])
			}
		}
	}
	if hits != 3 {
		t.Errorf("%d hits, want 3", hits)
	}
	c.drop(5)
	c.drop(5)
	c.put(6, 106, 0, id(6)) // reuses the dropped slot
	if len(c.slab) != 3 || !c.get(6, 106, 0, got) || got[0] != 6 {
		t.Errorf("slot not reused: %d slots", len(c.slab))
	}
}

func BenchmarkDecodeCompact(b *testing.B) {
	var d decoder
	var ev event.Event
	full := withIdent(newRec(event.TypeOpenat).u64(offRes, 3).str(strPath, "/usr/lib/x86_64-linux-gnu/libc.so.6").
		str(strRaw, "/lib/x86_64-linux-gnu/libc.so.6"), 42, 7, 1000, "bash")
	if err := d.decode(full.bytes(), &ev); err != nil {
		b.Fatal(err)
	}
	rec := full.noIdent().bytes()
	b.ReportAllocs()
	for b.Loop() {
		if err := d.decode(rec, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDecodeCompact: with one identity cached, whatever the input, a
// record decoded without its own identity got exactly the cached one, and
// only for the (tid, gen, epoch) that sent it.
func FuzzDecodeCompact(f *testing.F) {
	seed := func(r *rec) *rec { return withIdent(r, 42, 7, 1000, "sh").noIdent() }
	f.Add(seed(newRec(event.TypeOpenat).str(strPath, "/x")).bytes())
	f.Add(seed(newRec(event.TypeConnect).u16(offFamily, event.AFInet6)).bytes())
	f.Add(seed(newRec(event.TypeClone).str(strCgroup, "/c")).bytes())
	f.Add(seed(newRec(event.TypeMount).str(strRaw, "a").str(strAux, "proc")).bytes())
	f.Add(withIdent(newRec(event.TypeOpenat).str(strPath, "/x"), 42, 8, 0, "x").bytes())
	f.Add(seed(newRec(event.TypeProcexit)).bytes())
	primer := withIdent(newRec(event.TypeOpenat), 42, 7, 1000, "sh").bytes()
	f.Fuzz(func(t *testing.T, b []byte) {
		var d decoder
		var ev event.Event
		if err := d.decode(primer, &ev); err != nil {
			t.Fatal(err)
		}
		err := d.decode(b, &ev)
		if err != nil || u32(b, offFlags)&recIdent != 0 {
			return
		}
		if u32(b, offTid) != 42 || u32(b, offGen) != 7 || u32(b, offEpoch) != 0 {
			t.Fatalf("identity lent to tid %d gen %d epoch %d", u32(b, offTid), u32(b, offGen), u32(b, offEpoch))
		}
		if ev.Proc.UID != 1000 || ev.Proc.PID != 42 || ev.Proc.Comm != "sh" {
			t.Fatalf("identity %+v", ev.Proc)
		}
	})
}
