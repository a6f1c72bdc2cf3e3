package alert

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type sink struct {
	mu  sync.Mutex
	got []*Alert
}

func (s *sink) emit(a *Alert) { s.mu.Lock(); s.got = append(s.got, a); s.mu.Unlock() }
func (s *sink) n() int        { s.mu.Lock(); defer s.mu.Unlock(); return len(s.got) }

func shadow(out string) *Alert {
	return &Alert{Rule: "Read sensitive file untrusted", Priority: PriorityWarning, Output: out, UUID: NewUUID(), OutputFields: map[string]any{"fd.name": "/etc/shadow"}}
}

func TestCoalescer(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var s sink
	c := NewCoalescer(CoalesceConfig{Window: 10 * time.Second, Now: clk.Now}, s.emit)

	if !c.Offer(shadow("open /etc/shadow by cat")) {
		t.Fatal("first alert must be sent at once")
	}
	for i := 0; i < 100000; i++ {
		if c.Offer(shadow("open /etc/shadow by cat")) {
			t.Fatal("repeat sent")
		}
	}
	if !c.Offer(shadow("open /etc/shadow by dd")) {
		t.Fatal("distinct outputs are never coalesced")
	}
	if s.n() != 2 {
		t.Fatalf("emitted %d, want 2", s.n())
	}
	clk.Add(9 * time.Second)
	c.Sweep()
	if s.n() != 2 {
		t.Fatalf("follow-up before window end")
	}
	clk.Add(time.Second)
	c.Sweep()
	if s.n() != 3 {
		t.Fatalf("emitted %d, want 3 (one follow-up)", s.n())
	}
	fu := s.got[2]
	if fu.OutputFields[FieldCoalescedCount] != uint64(100000) || fu.Rule != "Read sensitive file untrusted" || fu.OutputFields["fd.name"] != "/etc/shadow" {
		t.Errorf("follow-up %+v", fu)
	}
	if want := "open /etc/shadow by cat (repeated 100000 more times in 10s)"; fu.Output != want {
		t.Errorf("follow-up output %q", fu.Output)
	}
	// Quiet window: the entry expires with no follow-up; the next one is sent at once.
	clk.Add(10 * time.Second)
	c.Sweep()
	if s.n() != 3 || c.Stats().Tracked != 0 {
		t.Fatalf("n=%d stats=%+v", s.n(), c.Stats())
	}
	if !c.Offer(shadow("open /etc/shadow by cat")) {
		t.Fatal("after expiry the alert is new again")
	}
	c.Offer(shadow("open /etc/shadow by cat"))
	c.Close()
	if s.n() != 5 || s.got[4].OutputFields[FieldCoalescedCount] != uint64(1) {
		t.Fatalf("Close must flush pending counts: n=%d", s.n())
	}
	st := c.Stats()
	if st.Offered != 100004 || st.Coalesced != 100001 || st.FollowUps != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestCoalescerExpiredOnOffer(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var s sink
	c := NewCoalescer(CoalesceConfig{Window: time.Second, Now: clk.Now}, s.emit)
	c.Offer(shadow("x"))
	c.Offer(shadow("x"))
	clk.Add(2 * time.Second)
	if !c.Offer(shadow("x")) || s.n() != 3 { // first, follow-up, new first
		t.Fatalf("n=%d", s.n())
	}
}

func TestCoalescerBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var s sink
	c := NewCoalescer(CoalesceConfig{MaxKeys: 10, Now: clk.Now}, s.emit)
	for i := 0; i < 100; i++ {
		if !c.Offer(shadow(fmt.Sprint(i))) {
			t.Fatal("distinct alert suppressed")
		}
	}
	if st := c.Stats(); st.Tracked != 10 || st.Untracked != 90 {
		t.Errorf("stats %+v", st)
	}
}

func TestCoalescerDisabledAndRun(t *testing.T) {
	var s sink
	c := NewCoalescer(CoalesceConfig{Window: -1}, s.emit)
	c.Offer(shadow("x"))
	c.Offer(shadow("x"))
	if s.n() != 2 {
		t.Fatal("disabled coalescer must pass everything")
	}
	var s2 sink
	c2 := NewCoalescer(CoalesceConfig{Window: 20 * time.Millisecond}, s2.emit)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c2.Run(ctx) }()
	c2.Offer(shadow("x"))
	c2.Offer(shadow("x"))
	deadline := time.Now().Add(5 * time.Second)
	for s2.n() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if s2.n() != 2 {
		t.Fatalf("Run did not emit the follow-up: %d", s2.n())
	}
}

func BenchmarkCoalescerOffer(b *testing.B) {
	c := NewCoalescer(CoalesceConfig{}, func(*Alert) {})
	a := shadow("open /etc/shadow by cat")
	b.ReportAllocs()
	for b.Loop() {
		c.Offer(a)
	}
}
