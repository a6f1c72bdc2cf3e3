package spool

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestModel drives random operations (append, read, ack, rewind, sync,
// crash+reopen) against an in-memory model of the contract: reads come in
// append order; after a crash every unacknowledged record is replayed, in
// order, possibly preceded by some records acknowledged since the last Sync.
func TestModel(t *testing.T) {
	for seed := uint64(1); seed <= 10; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed) })
	}
}

func runModel(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	cfg := Config{Dir: fastDir(t), MaxBytes: 1 << 30, SegmentBytes: 512, SyncEvery: 1 << 20}
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	var (
		n        int   // records appended
		pending  []int // unacknowledged record indexes, in spool order
		read     int   // pending[:read] have been read
		inflight []Record
		synced   int // first unacknowledged index at the last Sync
	)
	index := func(r Record) int {
		i, err := strconv.Atoi(strings.SplitN(string(r.Data), "-", 2)[0][1:])
		if err != nil {
			t.Fatalf("bad record %q", r.Data)
		}
		return i
	}
	for op := 0; op < 1500; op++ {
		switch k := rng.IntN(100); {
		case k < 40:
			d := fmt.Sprintf("r%d-%s", n, strings.Repeat("x", rng.IntN(80)))
			if _, err := s.Append(uint8(rng.IntN(8)), []byte(d)); err != nil {
				t.Fatal(err)
			}
			pending = append(pending, n)
			n++
		case k < 70:
			r, ok, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ok != (read < len(pending)) {
				t.Fatalf("op %d: Next ok=%v, model has %d unread", op, ok, len(pending)-read)
			}
			if !ok {
				continue
			}
			if got := index(r); got != pending[read] {
				t.Fatalf("op %d: Next = record %d, want %d", op, got, pending[read])
			}
			read++
			inflight = append(inflight, r)
		case k < 90:
			if len(inflight) > 0 {
				s.Ack(inflight[0])
				inflight, pending, read = inflight[1:], pending[1:], read-1
			}
		case k < 94:
			s.Rewind()
			read, inflight = 0, nil
		case k < 97:
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			synced = n
			if len(pending) > 0 {
				synced = pending[0]
			}
		default: // crash: no Sync, no Close
			s.closeFiles()
			if s, err = Open(cfg); err != nil {
				t.Fatal(err)
			}
			var replay []int
			for _, r := range drain(t, s, false) {
				replay = append(replay, index(r))
			}
			want := map[int]bool{}
			for _, i := range pending {
				want[i] = true
			}
			for j, i := range replay {
				if j > 0 && i <= replay[j-1] || i < synced {
					t.Fatalf("op %d: replay %v out of order or before the synced cursor %d", op, replay, synced)
				}
				delete(want, i)
			}
			if len(want) > 0 {
				t.Fatalf("op %d: unacknowledged records %v lost in the crash (replay %v)", op, want, replay)
			}
			if st := s.Stats(); st.Pending != uint64(len(replay)) {
				t.Fatalf("op %d: Pending %d, replay %d", op, st.Pending, len(replay))
			}
			s.Rewind()
			pending, read, inflight = replay, 0, nil
		}
	}
}

// fastDir is a temporary directory on tmpfs when there is one: the model
// test checks logic, and fsync on a busy disk would dominate its run time.
func fastDir(t *testing.T) string {
	d, err := os.MkdirTemp("/dev/shm", "spool-model-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
