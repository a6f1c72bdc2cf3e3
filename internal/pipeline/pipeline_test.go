package pipeline

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/proc"
	"github.com/tripline/tripline/internal/rules"
)

func loadRules(t *testing.T) *rules.Ruleset {
	t.Helper()
	rs, _, err := rules.LoadFiles([]string{"testdata/rules.yaml"}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

type collector struct {
	mu     sync.Mutex
	alerts []*alert.Alert
}

func (c *collector) publish(a *alert.Alert) {
	c.mu.Lock()
	c.alerts = append(c.alerts, a)
	c.mu.Unlock()
}

func (c *collector) get() []*alert.Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*alert.Alert(nil), c.alerts...)
}

func TestReplayCoalescesAndSkipsMalformed(t *testing.T) {
	f, err := os.Open("testdata/events.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var c collector
	p, err := New(Config{Source: NewJSONLines(f), Rules: loadRules(t), Publish: c.publish, Hostname: "test-host"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.get()
	// shadow (sent), shadow again (coalesced, reported on close), sudoers (sent),
	// then the follow-up carrying the repeat count.
	var outputs []string
	for _, a := range got {
		outputs = append(outputs, a.Rule+": "+a.Output)
		if a.Hostname != "test-host" {
			t.Errorf("hostname %q", a.Hostname)
		}
	}
	if len(got) != 3 {
		t.Fatalf("want 3 alerts (2 distinct + 1 coalescing follow-up), got %d:\n%s", len(got), strings.Join(outputs, "\n"))
	}
	if !strings.Contains(got[0].Output, "file=/etc/shadow proc=cat pid=10 container=host") {
		t.Errorf("output: %q", got[0].Output)
	}
	if got[0].Priority != alert.PriorityWarning || fmt.Sprint(got[0].OutputFields["proc.pid"]) != "10" {
		t.Errorf("priority %v fields %#v", got[0].Priority, got[0].OutputFields)
	}
	var follow *alert.Alert
	for _, a := range got {
		if _, ok := a.OutputFields[alert.FieldCoalescedCount]; ok {
			follow = a
		}
	}
	if follow == nil {
		t.Fatalf("no coalescing follow-up among:\n%s", strings.Join(outputs, "\n"))
	}
	st := p.Stats()
	if st.Malformed != 1 || st.Events[event.TypeOpenat] != 4 || st.Matches != 3 || st.RuleCounts["Read sensitive file"] != 3 {
		t.Errorf("stats: %+v", st)
	}
}

func TestContainerEventsAndDrops(t *testing.T) {
	src := &chanSource{ch: make(chan *event.Event)}
	containers := make(chan *event.Event, 1)
	var drops uint64 = 0
	var mu sync.Mutex
	var c collector
	p, err := New(Config{
		Source: src, Rules: loadRules(t), Publish: c.publish, Containers: containers,
		Drops:        func() uint64 { mu.Lock(); defer mu.Unlock(); return drops },
		DropInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(context.Background()) }()
	<-p.Ready()
	containers <- &event.Event{Type: event.TypeContainer, Container: &event.Container{ID: "0123456789ab", FullID: "0123456789ab", Privileged: true}}
	mu.Lock()
	drops = 7
	mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(c.get()) < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	close(src.ch)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var rulesSeen []string
	for _, a := range c.get() {
		rulesSeen = append(rulesSeen, a.Rule)
		if a.Rule == alert.RuleEventDrop && (a.Source != alert.SourceInternal || a.OutputFields["n_drops"] != "7") {
			t.Errorf("drop alert: %+v", a)
		}
	}
	joined := strings.Join(rulesSeen, "|")
	if !strings.Contains(joined, "Container started") || !strings.Contains(joined, alert.RuleEventDrop) {
		t.Fatalf("want a container alert and a drop alert, got %q", joined)
	}
}

type chanSource struct{ ch chan *event.Event }

func (s *chanSource) Read(ev *event.Event) error {
	e, ok := <-s.ch
	if !ok {
		return errEOF
	}
	*ev = *e
	return nil
}

var errEOF = io.EOF

func BenchmarkProcess(b *testing.B) {
	rs, _, err := rules.LoadFiles([]string{"testdata/rules.yaml"}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := New(Config{Source: &chanSource{}, Rules: rs})
	if err != nil {
		b.Fatal(err)
	}
	eval := rs.NewEvaluator()
	ev := event.Event{Type: event.TypeOpenat, Res: 3, Proc: event.Process{PID: 1, Comm: "cat"}, Open: event.Open{Path: "/etc/hosts"}}
	matched := make([]*rules.Rule, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		matched = p.process(&ev, eval, matched[:0])
	}
}

// BenchmarkProcessDefaultRules is the per-event userspace cost of the whole
// pipeline (process table lookup and ancestry, default rules) for typical
// open, exec and connect events; 1e9/ns is the events/s one core sustains.
func BenchmarkProcessDefaultRules(b *testing.B) {
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	procs := proc.New(proc.Config{ProcFS: b.TempDir()})
	// A parent (bash) and the process under test (cat), via real fork/exec events.
	procs.Handle(&event.Event{Type: event.TypeExecve, Proc: event.Process{PID: 100, TID: 100, PPID: 1, Comm: "bash", ExePath: "/usr/bin/bash", Argv: []string{"bash"}}})
	procs.Handle(&event.Event{Type: event.TypeClone, Proc: event.Process{PID: 100, TID: 100, PPID: 1, Comm: "bash"}, Fork: event.Fork{ChildPID: 200, ChildTID: 200}})
	procs.Handle(&event.Event{Type: event.TypeExecve, Proc: event.Process{PID: 200, TID: 200, PPID: 100, Comm: "cat", ExePath: "/usr/bin/cat", Argv: []string{"cat", "/etc/hosts"}}})
	p, err := New(Config{Source: &chanSource{}, Rules: rs, Procs: procs})
	if err != nil {
		b.Fatal(err)
	}
	events := map[string]event.Event{
		"open": {Type: event.TypeOpenat, Res: 3, Proc: event.Process{PID: 200, TID: 200, PPID: 100, Comm: "cat"},
			Open: event.Open{Path: "/etc/hosts", RawPath: "/etc/hosts", Flags: 0x80000}},
		"exec": {Type: event.TypeExecve, Proc: event.Process{PID: 200, TID: 200, PPID: 100, Comm: "ls", ExePath: "/usr/bin/ls", Argv: []string{"ls", "-l"}}},
		"connect": {Type: event.TypeConnect, Res: 0, Proc: event.Process{PID: 200, TID: 200, PPID: 100, Comm: "cat"},
			Connect: event.Connect{FD: 3, Family: event.AFInet, Proto: event.ProtoTCP, SockType: 1,
				LocalAddr: netip.MustParseAddr("127.0.0.1"), LocalPort: 40000, RemoteAddr: netip.MustParseAddr("127.0.0.1"), RemotePort: 8080}},
	}
	for _, name := range []string{"open", "exec", "connect"} {
		b.Run(name, func(b *testing.B) {
			eval := rs.NewEvaluator()
			matched := make([]*rules.Rule, 0, 8)
			tmpl := events[name]
			var ev event.Event
			b.ReportAllocs()
			for b.Loop() {
				ev = tmpl
				matched = p.process(&ev, eval, matched[:0])
			}
			if len(matched) != 0 {
				b.Fatalf("benign %s event matched %s", name, matched[0].Name)
			}
		})
	}
}

// TestAlertsNameTheirContainer: every alert says where it happened, even
// when the rule's output (like upstream Falco rules') names no container.
func TestAlertsNameTheirContainer(t *testing.T) {
	rs, _, err := rules.Load([]rules.Source{{Name: "r.yaml", Data: []byte(`- rule: R
  desc: d
  condition: evt.type = openat
  output: opened %fd.name
  priority: WARNING
- rule: C
  desc: d
  condition: evt.type = openat
  output: opened %fd.name in %container.id
  priority: WARNING
`)}}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ct := &event.Container{ID: "0123456789ab", FullID: "0123456789abcdef", Name: "web", ImageRepository: "nginx", PodName: "web-1", PodNamespace: "prod"}
	tests := []struct {
		name string
		ct   *event.Container
		want map[string]any
	}{
		{"host", nil, map[string]any{"container.id": "host", "container.name": "host"}},
		{"container", ct, map[string]any{"container.id": "0123456789ab", "container.name": "web",
			"container.image.repository": "nginx", "k8s.ns.name": "prod", "k8s.pod.name": "web-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Config{Source: NewJSONLines(strings.NewReader("")), Rules: rs, Coalesce: -1})
			if err != nil {
				t.Fatal(err)
			}
			ev := &event.Event{Type: event.TypeOpenat, Container: tt.ct}
			ev.Open.Path = "/etc/x"
			for _, r := range rs.Rules() {
				a := p.alertFor(r, ev)
				for k, v := range tt.want {
					if a.OutputFields[k] != v {
						t.Errorf("rule %s: %s = %v, want %v (fields %v)", r.Name, k, a.OutputFields[k], v, a.OutputFields)
					}
				}
				if _, ok := a.OutputFields["container.image.repository"]; tt.ct == nil && ok {
					t.Errorf("rule %s: a host alert has an image: %v", r.Name, a.OutputFields)
				}
			}
		})
	}
}
