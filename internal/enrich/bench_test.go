package enrich

import (
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// warm returns an enricher whose cache holds n containers (no containerd).
func warm(tb testing.TB, n int) (*Enricher, []string) {
	e, err := New(Config{Socket: "/nonexistent.sock"})
	if err != nil {
		tb.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		b := []byte(hexA)
		b[0], b[1], b[2] = "0123456789abcdef"[i%16], "0123456789abcdef"[(i/16)%16], "0123456789abcdef"[(i/256)%16]
		ids[i] = string(b)
		e.store(&event.Container{ID: ids[i][:12], FullID: ids[i], Name: "web", Labels: map[string]string{"app": "x"}}, record{ns: "k8s.io"})
	}
	return e, ids
}

func TestEnrichWarmNoAlloc(t *testing.T) {
	e, ids := warm(t, 100)
	ev := &event.Event{Proc: event.Process{CgroupPath: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice/cri-containerd-" + ids[7] + ".scope"}}
	host := &event.Event{Proc: event.Process{CgroupPath: "/process_api/fe824243f3e194cf9082bdea5f959e3b"}}
	if n := testing.AllocsPerRun(1000, func() { e.Enrich(ev); e.Enrich(host) }); n != 0 {
		t.Errorf("warm Enrich allocates %.1f", n)
	}
	if ev.Proc.ContainerID != ids[7] || ev.Container == nil || ev.Container.Name != "web" {
		t.Errorf("warm Enrich: %q %+v", ev.Proc.ContainerID, ev.Container)
	}
	if host.Container != nil || host.Proc.ContainerID != "" {
		t.Errorf("host: %+v", host.Container)
	}
	if s := e.Stats(); s.Hits != 1001 || s.Misses != 0 {
		t.Errorf("stats %+v", s)
	}
}

// BenchmarkEnrich: a warm cache of 1000 containers, one event per path kind.
func BenchmarkEnrich(b *testing.B) {
	e, ids := warm(b, 1000)
	for _, c := range []struct{ name, path string }{
		{"k8s-systemd", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice/cri-containerd-" + ids[500] + ".scope"},
		{"containerd", "/default/" + ids[500]},
		{"host", "/process_api/fe824243f3e194cf9082bdea5f959e3b"}, // the common case on a node
	} {
		b.Run(c.name, func(b *testing.B) {
			ev := &event.Event{Proc: event.Process{CgroupPath: c.path}}
			b.ReportAllocs()
			for b.Loop() {
				e.Enrich(ev)
			}
		})
	}
}

func BenchmarkContainerID(b *testing.B) {
	p := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uid + ".slice/cri-containerd-" + hexA + ".scope"
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		ContainerID(p)
	}
}
