package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func open(t testing.TB, cfg Config) *Spool {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func drain(t testing.TB, s *Spool, ack bool) []Record {
	t.Helper()
	var out []Record
	for {
		r, ok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		if ack {
			s.Ack(r)
		}
		out = append(out, r)
	}
}

func TestOrderAcrossPriorities(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir()})
	for i := 0; i < 100; i++ {
		if _, err := s.Append(uint8(i%8), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	got := drain(t, s, false)
	if len(got) != 100 {
		t.Fatalf("got %d records", len(got))
	}
	for i, r := range got {
		if string(r.Data) != fmt.Sprint(i) || r.Priority != uint8(i%8) {
			t.Fatalf("record %d = %q prio %d", i, r.Data, r.Priority)
		}
	}
	// Nothing acknowledged: Rewind replays everything.
	s.Rewind()
	if n := len(drain(t, s, true)); n != 100 {
		t.Fatalf("after rewind %d", n)
	}
	if st := s.Stats(); st.Pending != 0 || st.Delivered != 100 || st.Appended != 100 {
		t.Errorf("stats %+v", st)
	}
}

func TestReopenResumesAtCursor(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, SegmentBytes: 4096}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		s.Append(uint8(i%3), []byte(fmt.Sprintf("rec-%04d", i)))
	}
	for i := 0; i < 400; i++ {
		r, _, _ := s.Next()
		s.Ack(r)
	}
	s.Sync()
	// Read (but do not ack) more, then "crash": no Close.
	for i := 0; i < 100; i++ {
		s.Next()
	}
	s.closeFiles()

	s2 := open(t, cfg)
	got := drain(t, s2, true)
	if len(got) != 600 || string(got[0].Data) != "rec-0400" || string(got[599].Data) != "rec-0999" {
		t.Fatalf("got %d, first %q", len(got), got[0].Data)
	}
	if st := s2.Stats(); st.Pending != 0 {
		t.Errorf("stats %+v", st)
	}
	// New appends continue the sequence after the recovered ones.
	s2.Append(0, []byte("next"))
	r, ok, _ := s2.Next()
	if !ok || string(r.Data) != "next" || r.Seq != 1000 {
		t.Fatalf("after reopen: %+v", r)
	}
}

func TestCorruptAndTornRecordsAreSkipped(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		s.Append(2, bytes.Repeat([]byte{byte('a' + i)}, 50))
	}
	s.Close()
	path := filepath.Join(dir, "2-0000000000000001.seg")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recLen := len(b) / 10
	b[3*recLen+headerSize+metaSize+5] ^= 0xff // flip a data byte of record 3 (CRC fails)
	b = append(b, b[:recLen/2]...)            // torn tail
	os.WriteFile(path, b, 0o600)

	s2 := open(t, Config{Dir: dir})
	got := drain(t, s2, true)
	if len(got) != 9 {
		t.Fatalf("got %d records, want 9", len(got))
	}
	for _, r := range got {
		if r.Data[0] == 'd' {
			t.Fatal("corrupt record delivered")
		}
	}
	if st := s2.Stats(); st.Corrupt != 1 {
		t.Errorf("stats %+v", st)
	}
	// The torn tail was truncated: appends after it read back fine.
	s2.Append(2, []byte("after"))
	if r, ok, _ := s2.Next(); !ok || string(r.Data) != "after" {
		t.Fatalf("append after torn tail: %q", r.Data)
	}
	// Corruption while running (between reads) is skipped too.
	s2.Append(2, []byte("x1"))
	s2.Append(2, []byte("x2"))
	sg := s2.lanes[2].segs[len(s2.lanes[2].segs)-1]
	sg.f.WriteAt([]byte{0}, sg.size-int64(headerSize+metaSize+2)*2) // smash magic of x1
	got = drain(t, s2, true)
	if len(got) != 1 || string(got[0].Data) != "x2" {
		t.Fatalf("got %d", len(got))
	}
}

func TestFullDropsLowestPriorityOldestFirst(t *testing.T) {
	rec := bytes.Repeat([]byte("x"), 100) // 119 bytes framed
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 119 * 40, SegmentBytes: 119 * 5})
	for i := 0; i < 20; i++ {
		s.Append(7, rec) // debug
	}
	for i := 0; i < 20; i++ {
		s.Append(2, rec) // critical
	}
	if st := s.Stats(); st.Dropped != 0 || st.Pending != 40 {
		t.Fatalf("stats %+v", st)
	}
	// 10 more critical ones: 10 debug records (two oldest segments) go.
	for i := 0; i < 10; i++ {
		if _, err := s.Append(2, rec); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	if st.Dropped != 10 || st.Pending != 40 || st.Bytes > 119*40 {
		t.Fatalf("stats %+v", st)
	}
	got := drain(t, s, false)
	debug := 0
	for _, r := range got {
		if r.Priority == 7 {
			debug++
			if r.Seq < 10 {
				t.Fatalf("oldest debug record %d survived", r.Seq)
			}
		}
	}
	if debug != 10 {
		t.Fatalf("%d debug records left", debug)
	}
	// A debug record when only more severe ones remain is refused.
	for i := 0; i < 10; i++ {
		s.Append(7, rec)
	}
	s.Rewind()
	for i := 0; i < 40; i++ {
		s.Append(2, rec)
	}
	if _, err := s.Append(7, rec); err != ErrFull {
		t.Fatalf("want ErrFull, got %v", err)
	}
}

func TestAckReclaimsSpace(t *testing.T) {
	rec := bytes.Repeat([]byte("y"), 100)
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 119 * 20, SegmentBytes: 119 * 4})
	for round := 0; round < 50; round++ {
		for i := 0; i < 10; i++ {
			if _, err := s.Append(4, rec); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(drain(t, s, true)); n != 10 {
			t.Fatalf("round %d: %d", round, n)
		}
	}
	if st := s.Stats(); st.Dropped != 0 || st.Bytes > 119*20 {
		t.Fatalf("stats %+v", st)
	}
}

func TestBadInput(t *testing.T) {
	if _, err := Open(Config{}); err == nil {
		t.Fatal("want error for empty dir")
	}
	s := open(t, Config{Dir: t.TempDir()})
	if _, err := s.Append(0, make([]byte, MaxRecord+1)); err == nil {
		t.Fatal("want ErrTooLarge")
	}
	s.Close()
	if _, err := s.Append(0, nil); err != ErrClosed {
		t.Fatal(err)
	}
}

func FuzzScan(f *testing.F) {
	var seg []byte
	for i := 0; i < 4; i++ {
		seg = appendRecord(seg, uint64(i), uint8(i), []byte(fmt.Sprint("record", i)))
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add(append([]byte{magic0, magic1, 0xff, 0xff, 0xff, 0x7f}, seg...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		end, _ := scan(b, func(off int, seq uint64, prio uint8, data []byte) {
			if prio > 7 || off+headerSize+metaSize+len(data) > len(b) {
				t.Fatalf("bad record at %d", off)
			}
			// Re-framing a parsed record gives the same bytes.
			if re := appendRecord(nil, seq, prio, data); !bytes.Equal(re, b[off:off+len(re)]) {
				t.Fatal("re-framed record differs")
			}
		})
		if end > len(b) || end < 0 {
			t.Fatalf("end %d", end)
		}
		// Valid records survive arbitrary garbage in front of them.
		rec := appendRecord(nil, 42, 3, []byte("tail"))
		found, straddled := false, false
		scan(append(append([]byte(nil), b...), rec...), func(off int, seq uint64, _ uint8, data []byte) {
			if off == len(b) && seq == 42 && string(data) == "tail" {
				found = true
			}
			if off < len(b) && off+headerSize+metaSize+len(data) > len(b) {
				straddled = true // a CRC-valid record swallowed the tail: legitimate
			}
		})
		if !found && !straddled {
			t.Fatalf("valid record after %x not found", b)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	s := open(b, Config{Dir: b.TempDir(), MaxBytes: 1 << 30})
	data := bytes.Repeat([]byte("z"), 700) // a typical alert JSON
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := s.Append(4, data); err != nil {
			b.Fatal(err)
		}
	}
}

// Appends that evict race with a reader; the counters must add up and reads
// stay in order.
func TestConcurrentEviction(t *testing.T) {
	s := open(t, Config{Dir: t.TempDir(), MaxBytes: 16 << 10, SegmentBytes: 2 << 10})
	done := make(chan struct{})
	var refused uint64
	go func() {
		defer close(done)
		for i := 0; i < 5000; i++ {
			if _, err := s.Append(uint8(i%8), bytes.Repeat([]byte{'q'}, 40+i%100)); err == ErrFull {
				refused++
			} else if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var last uint64
	reading := true
	for reading {
		select {
		case <-done:
			reading = false
		default:
		}
		for {
			r, ok, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			if r.Seq < last {
				t.Fatalf("seq %d after %d", r.Seq, last)
			}
			last = r.Seq
			if r.Seq%3 != 0 { // leave some unacknowledged for a while
				s.Ack(r)
			}
		}
	}
	st := s.Stats()
	if st.Appended+refused != 5000 || st.Appended != st.Delivered+(st.Dropped-refused)+st.Pending {
		t.Errorf("counters do not add up: %+v refused=%d", st, refused)
	}
	if st.Bytes > 16<<10 {
		t.Errorf("spool over its bound: %d", st.Bytes)
	}
}
