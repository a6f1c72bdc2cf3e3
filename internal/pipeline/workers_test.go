package pipeline

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/proc"
	"github.com/tripline/tripline/internal/rules"
)

// borrowSource replays events the way the capture hands them out: every
// string of the event lives in one buffer that the next Read overwrites, so
// a stage that keeps a borrowed string sees it change.
type borrowSource struct {
	evs     []event.Event
	n, i    int  // events to deliver (cycling through evs), delivered
	pending bool // implement Pending as the capture does
	buf     []byte
	argv    []string
	now     int64
}

func (s *borrowSource) Read(ev *event.Event) error {
	if s.i >= s.n {
		return io.EOF
	}
	src := &s.evs[s.i%len(s.evs)]
	s.i++
	for i := range s.buf {
		s.buf[i] = 'X'
	}
	s.buf = s.buf[:0]
	*ev = *src
	s.now += 1000
	ev.Timestamp = s.now
	p := &ev.Proc
	p.Comm, p.ExePath, p.Cwd = s.borrow(p.Comm), s.borrow(p.ExePath), s.borrow(p.Cwd)
	if p.Argv != nil {
		s.argv = s.argv[:0]
		for _, a := range src.Proc.Argv {
			s.argv = append(s.argv, s.borrow(a))
		}
		p.Argv = s.argv
	}
	ev.Open.Path, ev.Open.RawPath = s.borrow(ev.Open.Path), s.borrow(ev.Open.RawPath)
	return nil
}

// borrow copies x into the shared buffer; the buffer is big enough never to
// move, so earlier strings of the same event stay intact.
func (s *borrowSource) borrow(x string) string {
	if x == "" {
		return ""
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, 64<<10)
	}
	n := len(s.buf)
	s.buf = append(s.buf, x...)
	return unsafe.String(&s.buf[n], len(x))
}

// pendingSource adds Pending to a borrowSource.
type pendingSource struct{ *borrowSource }

func (s pendingSource) Pending() bool { return s.i < s.n }

func (s *borrowSource) source() Source {
	if s.pending {
		return pendingSource{s}
	}
	return s
}

const orderRules = `- rule: Ordered open
  desc: d
  condition: evt.type = openat and fd.name startswith /tmp/ord/
  output: "open %fd.name pid=%proc.pid parent=%proc.pname exe=%proc.exepath"
  priority: WARNING
`

// forkTree is a parent (pid 100) that forks and execs children, each of
// which opens numbered files and exits; the children's events interleave,
// as events of processes on several CPUs do.
func forkTree(children, opens int) []event.Event {
	parent := event.Process{PID: 100, TID: 100, PPID: 1, Comm: "parent", ExePath: "/usr/bin/parent", Argv: []string{"parent"}}
	evs := []event.Event{{Type: event.TypeExecve, Proc: parent}}
	for c := range children {
		pid := uint32(1000 + c)
		evs = append(evs, event.Event{Type: event.TypeClone, Res: int64(pid), Proc: parent,
			Fork: event.Fork{ChildPID: pid, ChildTID: pid}})
	}
	// Each child execs, then opens; round-robin over the children.
	for k := -1; k <= opens; k++ {
		for c := range children {
			pid := uint32(1000 + c)
			child := event.Process{PID: pid, TID: pid, PPID: 100, Comm: "child"}
			switch {
			case k < 0:
				child.ExePath = fmt.Sprintf("/usr/bin/child%d", c)
				child.Argv = []string{"child", strconv.Itoa(c)}
				evs = append(evs, event.Event{Type: event.TypeExecve, Proc: child})
			case k == opens:
				evs = append(evs, event.Event{Type: event.TypeProcexit, Proc: child})
			default:
				path := fmt.Sprintf("/tmp/ord/%d/%d", c, k)
				evs = append(evs, event.Event{Type: event.TypeOpenat, Res: 3, Proc: child,
					Open: event.Open{Path: path, RawPath: path}})
			}
		}
	}
	return evs
}

// orderCheck stands for the enricher and the user resolver, whose
// per-container state assumes the events come in order from one goroutine:
// it has no lock (the race detector sees a second caller) and fails on an
// event older than the last one.
type orderCheck struct {
	t          *testing.T
	last, seen int64
}

func (o *orderCheck) check(ev *event.Event) {
	if ev.Timestamp <= o.last {
		o.t.Errorf("event at %d after one at %d", ev.Timestamp, o.last)
	}
	o.last = ev.Timestamp
	o.seen++
}

func (o *orderCheck) Enrich(ev *event.Event) { o.check(ev) }

type usersCheck struct{ *orderCheck }

func (u usersCheck) Resolve(ev *event.Event) {
	if ev.Timestamp != u.last {
		u.t.Errorf("Resolve of the event at %d after Enrich of the one at %d", ev.Timestamp, u.last)
	}
}

// TestWorkersKeepProcessOrder: with several workers, each process's events
// and alerts stay in order, and a child's events after its fork and exec
// see its parent and its new image, whichever worker evaluates them; the
// process table, the enricher and the user resolver see every event in
// read order.
func TestWorkersKeepProcessOrder(t *testing.T) {
	rs, _, err := rules.Load([]rules.Source{{Name: "r.yaml", Data: []byte(orderRules)}}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const children, opens = 16, 200
	tests := []struct {
		name    string
		workers int
		pending bool
	}{
		{"one", 1, false},
		{"four", 4, false},
		{"four-batched", 4, true},
		{"three-batched", 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := forkTree(children, opens)
			src := &borrowSource{evs: evs, n: len(evs), pending: tt.pending}
			var mu sync.Mutex
			seen := map[uint32][]string{} // pid → opened paths, in OnEvent order
			var c collector
			order := &orderCheck{t: t}
			p, err := New(Config{
				Source:   src.source(),
				Enricher: order,
				Users:    usersCheck{order},
				Procs:    proc.New(proc.Config{ProcFS: t.TempDir(), DisableMissRead: true}),
				Rules:    rs,
				Publish:  c.publish,
				Coalesce: -1,
				Workers:  tt.workers,
				OnEvent: func(ev *event.Event) {
					if ev.Type != event.TypeOpenat {
						return
					}
					if len(ev.Lineage) == 0 || ev.Lineage[0].PID != 100 || ev.Lineage[0].Comm != "parent" {
						t.Errorf("pid %d: lineage %v does not start at the parent", ev.Proc.PID, ev.Lineage)
					}
					mu.Lock()
					seen[ev.Proc.PID] = append(seen[ev.Proc.PID], strings.Clone(ev.Open.Path))
					mu.Unlock()
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			byPid := map[string][]string{}
			for _, a := range c.get() {
				pid := fmt.Sprint(a.OutputFields["proc.pid"])
				byPid[pid] = append(byPid[pid], a.Output)
			}
			for ch := range children {
				pid := uint32(1000 + ch)
				got := seen[pid]
				alerts := byPid[strconv.Itoa(int(pid))]
				if len(got) != opens || len(alerts) != opens {
					t.Fatalf("pid %d: %d events, %d alerts, want %d", pid, len(got), len(alerts), opens)
				}
				for k := range opens {
					path := fmt.Sprintf("/tmp/ord/%d/%d", ch, k)
					if got[k] != path {
						t.Fatalf("pid %d: event %d is %q, want %q", pid, k, got[k], path)
					}
					want := fmt.Sprintf("open %s pid=%d parent=parent exe=/usr/bin/child%d", path, pid, ch)
					if alerts[k] != want {
						t.Fatalf("pid %d: alert %d is %q, want %q", pid, k, alerts[k], want)
					}
				}
			}
			if order.seen != int64(len(evs)) {
				t.Errorf("the enricher saw %d events, want %d", order.seen, len(evs))
			}
			st := p.Stats()
			if st.Events[event.TypeOpenat] != children*opens || st.Alerts != children*opens {
				t.Errorf("stats: %d opens, %d alerts", st.Events[event.TypeOpenat], st.Alerts)
			}
			if tt.workers > 1 {
				var sum uint64
				for _, n := range st.PerWorker {
					sum += n
				}
				if len(st.PerWorker) != tt.workers || sum != uint64(len(evs)) {
					t.Errorf("per worker %v, want %d workers summing to %d", st.PerWorker, tt.workers, len(evs))
				}
			}
		})
	}
}

// TestWorkersStopOnContext: cancelling Run with events in flight returns
// after the workers finished what they were handed.
func TestWorkersStopOnContext(t *testing.T) {
	src := &chanSource{ch: make(chan *event.Event)}
	var c collector
	p, err := New(Config{Source: src, Rules: loadRules(t), Publish: c.publish, Workers: 2, Coalesce: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-p.Ready()
	// Cancel as soon as the reader has taken the last event: whatever is
	// still batched or queued on a worker must be finished, not dropped.
	const n = 50
	for i := range n {
		src.ch <- &event.Event{Type: event.TypeOpenat, Res: 3, Proc: event.Process{PID: uint32(7 + i), Comm: "cat"}, Open: event.Open{Path: "/etc/shadow"}}
	}
	cancel()
	close(src.ch)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(c.get()); got != n {
		t.Errorf("%d alerts, want %d", got, n)
	}
}

func TestWorkersBad(t *testing.T) {
	for _, n := range []int{-1, MaxWorkers + 1} {
		if _, err := New(Config{Source: &chanSource{}, Workers: n}); err == nil {
			t.Errorf("workers %d accepted", n)
		}
	}
}

// cpuTime is the process's user and system CPU time in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkPipelineReplay is the pipeline's capacity apart from the kernel
// and from load generation: pre-decoded events (borrowed, as the capture
// hands them out) of 64 processes through the process table, the default
// rules and alert building, on 1 and 2 workers. ns/op is per event; events/s
// is what the pipeline sustained on this machine's cores (what else runs
// there counts); cpu-ns/event is the CPU it spent per event, reader and
// workers together.
func BenchmarkPipelineReplay(b *testing.B) {
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const procs = 64
	var setup, evs []event.Event
	setup = append(setup, event.Event{Type: event.TypeExecve, Proc: event.Process{PID: 100, TID: 100, PPID: 1, Comm: "bash", ExePath: "/usr/bin/bash", Argv: []string{"bash"}}})
	for i := range procs {
		pid := uint32(1000 + i)
		p := event.Process{PID: pid, TID: pid, PPID: 100, Comm: "cat"}
		setup = append(setup, event.Event{Type: event.TypeClone, Proc: setup[0].Proc, Fork: event.Fork{ChildPID: pid, ChildTID: pid}})
		x := p
		x.ExePath, x.Argv = "/usr/bin/cat", []string{"cat", "/etc/hosts"}
		setup = append(setup, event.Event{Type: event.TypeExecve, Proc: x})
		evs = append(evs, event.Event{Type: event.TypeOpenat, Res: 3, Proc: p,
			Open: event.Open{Path: "/tmp/bench/f", RawPath: "/tmp/bench/f", Flags: 0x80000}})
	}
	cases := []struct {
		name    string
		workers int
		rules   *rules.Ruleset
	}{
		{"workers=1", 1, rs},
		{"workers=2", 2, rs},
		// The reader's share: decode stand-in, copy, process table and
		// hand-off, with workers that evaluate nothing. 1e9/cpu-ns is the
		// ceiling of one reader whatever the number of workers.
		{"workers=2/no-rules", 2, nil},
	}
	for _, tc := range cases {
		workers := tc.workers
		b.Run(tc.name, func(b *testing.B) {
			table := proc.New(proc.Config{ProcFS: b.TempDir(), DisableMissRead: true})
			for i := range setup {
				table.Handle(&setup[i])
			}
			var alerts int
			src := &borrowSource{evs: evs, n: b.N, pending: true, now: time.Now().UnixNano()}
			p, err := New(Config{Source: src.source(), Procs: table, Rules: tc.rules, Workers: workers,
				Publish: func(*alert.Alert) { alerts++ }})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			if err := p.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if alerts != 0 {
				b.Fatalf("benign opens raised %d alerts", alerts)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// CPU time does not depend on what else the machine runs.
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/event")
		})
	}
}
