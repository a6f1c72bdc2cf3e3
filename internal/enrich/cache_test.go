package enrich

import (
	"testing"
	"time"

	"github.com/tripline/tripline/internal/event"
)

func TestWaitBudget(t *testing.T) {
	e, err := New(Config{Socket: "/nonexistent.sock", MaxWaitsPerSec: 3})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for i := 0; i < 3; i++ {
		if d := e.mayWait(now); d != DefaultMissWait {
			t.Fatalf("wait %d: %v, want %v", i, d, DefaultMissWait)
		}
	}
	if d := e.mayWait(now + 1); d != 0 {
		t.Errorf("count budget exceeded: %v", d)
	}
	if d := e.mayWait(now + int64(time.Second)); d == 0 {
		t.Error("budget not renewed")
	}
}

// TestWaitTimeBudget: the waits of one second last MaxWaitPerSec in all,
// however many the count allows, so a slow containerd cannot hold the
// reading goroutine.
func TestWaitTimeBudget(t *testing.T) {
	e, err := New(Config{Socket: "/nonexistent.sock", MaxWaitsPerSec: 100, MaxWaitPerSec: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	for _, tc := range []struct {
		spend time.Duration // the previous wait's length
		want  time.Duration
	}{
		{0, DefaultMissWait},
		{DefaultMissWait, 50 * time.Millisecond}, // what is left of the second's 150ms
		{50 * time.Millisecond, 0},
	} {
		e.spent(now, int64(tc.spend))
		if d := e.mayWait(now); d != tc.want {
			t.Errorf("after %v more: may wait %v, want %v", tc.spend, d, tc.want)
		}
	}
	// A wait begun in an earlier second is not charged to this one.
	next := now + int64(time.Second)
	if d := e.mayWait(next); d != DefaultMissWait {
		t.Errorf("next second: %v", d)
	}
	e.spent(now, int64(time.Second))
	if d := e.mayWait(next); d != DefaultMissWait {
		t.Errorf("next second after a late charge: %v", d)
	}
}

func TestDeleteGraceAndPlaceholders(t *testing.T) {
	e, err := New(Config{Socket: "/nonexistent.sock", DeleteGrace: 10 * time.Second, NegativeTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UnixNano()
	e.store(&event.Container{ID: hexA[:12], FullID: hexA, Name: "a"}, record{ns: "default"})
	e.markDeleted(hexA, t0)
	e.sweep(t0 + int64(9*time.Second))
	if _, ok := e.Lookup(hexA); !ok {
		t.Fatal("removed within its grace")
	}
	e.sweep(t0 + int64(10*time.Second))
	if _, ok := e.Lookup(hexA); ok {
		t.Fatal("kept past its grace")
	}

	// Not connected: a miss does not wait and gets the bare id.
	ev := &event.Event{Proc: event.Process{CgroupPath: "/docker/" + hexB}}
	e.Enrich(ev)
	if ev.Proc.ContainerID != hexB || ev.Container == nil || ev.Container.ID != hexB[:12] || ev.Container.Name != "" {
		t.Fatalf("placeholder: %q %+v", ev.Proc.ContainerID, ev.Container)
	}
	if s := e.Stats(); s.Misses != 1 || s.Waits != 0 || s.Containers != 1 {
		t.Errorf("stats %+v", s)
	}
	// Metadata arriving later replaces the placeholder.
	e.store(&event.Container{ID: hexB[:12], FullID: hexB, Name: "late"}, record{ns: "moby"})
	e.Enrich(ev)
	if ev.Container.Name != "late" {
		t.Errorf("placeholder not replaced: %+v", ev.Container)
	}
	// Placeholders expire.
	e.placeholder(hexA, t0)
	e.sweep(t0 + int64(6*time.Second))
	e.mu.RLock()
	_, still := e.byID[hexA]
	n := e.nPlace
	e.mu.RUnlock()
	if still || n != 0 {
		t.Errorf("placeholder kept: %v, count %d", still, n)
	}
	// A known namespace makes /<ns>/<id> a candidate; unknown ones are host.
	host := &event.Event{Proc: event.Process{CgroupPath: "/process_api/fe824243f3e194cf9082bdea5f959e3b"}}
	e.Enrich(host)
	if host.Container != nil || host.Proc.ContainerID != "" {
		t.Errorf("host path enriched: %+v", host.Container)
	}
	e.store(&event.Container{ID: "t1", FullID: "t1", Name: "t1"}, record{ns: "default"})
	ctr := &event.Event{Proc: event.Process{CgroupPath: "/default/t1"}}
	e.Enrich(ctr)
	if ctr.Proc.ContainerID != "t1" || ctr.Container == nil {
		t.Errorf("known non-hex id: %q", ctr.Proc.ContainerID)
	}
	unknown := &event.Event{Proc: event.Process{CgroupPath: "/default/t2"}}
	e.Enrich(unknown)
	if unknown.Container != nil || unknown.Proc.ContainerID != "" {
		t.Errorf("unknown non-hex id in a known namespace is a container: %+v", unknown.Container)
	}
	if e.ContainerIDOf("/default/t1") != "t1" || e.ContainerIDOf("/default/t2") != "" || e.ContainerIDOf("/docker/"+hexA) != hexA {
		t.Error("ContainerIDOf")
	}
	// Events without a cgroup path fall back to the id.
	byID := &event.Event{Proc: event.Process{ContainerID: "t1"}}
	e.Enrich(byID)
	if byID.Container == nil || byID.Container.Name != "t1" {
		t.Errorf("by id: %+v", byID.Container)
	}
	_ = e.Close()
	_ = e.Close()
}

// TestContainerChurnBounded: 10,000 short-lived containers leave the cache
// empty once their grace has passed.
func TestContainerChurnBounded(t *testing.T) {
	e, err := New(Config{Socket: "/nonexistent.sock", DeleteGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UnixNano()
	b := []byte(hexA)
	for i := 0; i < 10000; i++ {
		for j, k := 0, i; j < 4; j, k = j+1, k/16 {
			b[j] = "0123456789abcdef"[k%16]
		}
		id := string(b)
		e.store(&event.Container{ID: id[:12], FullID: id, Labels: map[string]string{"i": id}}, record{ns: "default"})
		now := t0 + int64(i)*int64(time.Millisecond)
		e.markDeleted(id, now)
		if i%100 == 0 {
			e.sweep(now)
		}
		if n := e.Stats().Containers; n > 1200 {
			t.Fatalf("cache grew to %d after %d containers", n, i)
		}
	}
	e.sweep(t0 + int64(20*time.Second))
	if s := e.Stats(); s.Containers != 0 || s.Expired != 10000 {
		t.Errorf("after churn: %+v", s)
	}
}
