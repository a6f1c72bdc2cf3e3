package tail

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/broker"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func mk(i int, rule string, p alert.Priority, host string, fields map[string]any, out string) *alert.Alert {
	return &alert.Alert{
		Time: time.Date(2026, 3, 4, 5, 6, 7, i*1000000, time.UTC), Rule: rule, Priority: p,
		Source: alert.SourceSyscall, Output: out, OutputFields: fields, Hostname: host,
		UUID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i),
	}
}

func samples() []*alert.Alert {
	return []*alert.Alert{
		mk(0, "Read sensitive file untrusted", alert.PriorityWarning, "node-1",
			map[string]any{"container.id": "host", "fd.name": "/etc/shadow"}, "Sensitive file opened (file=/etc/shadow proc=cat)"),
		mk(1, "Terminal shell in container", alert.PriorityNotice, "node-2",
			map[string]any{"container.id": "ee97d9c4186f0123", "container.name": "web"}, "A shell was spawned (proc=\x1b[2J\x1b]0;pwned\x07bash)"),
		mk(2, "Drop and execute new binary in container", alert.PriorityCritical, "node-1",
			map[string]any{"container.id": "abcdef012345"}, "Executing binary not part of base image (proc=x\u202eexe.txt path=\\x1b bad=\xff\xfe\r\nnext line)"),
		mk(3, "Debugging \x1b[31mred rule", alert.PriorityDebug, "node-1", nil, "tab\there \u0085 C1"),
		alert.Internal(alert.RuleEventDrop, alert.PriorityInformational, "12 events lost", map[string]any{"n_drops": "12"}),
	}
}

func TestFilter(t *testing.T) {
	as := samples()
	tests := []struct {
		f    Filter
		want []int
	}{
		{Filter{}, []int{0, 1, 2, 3, 4}},
		{Filter{MinPriority: "warning"}, []int{0, 2}},
		{Filter{MinPriority: "INFO"}, []int{0, 1, 2, 4}},
		{Filter{Rule: "*in container"}, []int{1, 2}},
		{Filter{Rule: "read SENSITIVE file ?ntrusted"}, []int{0}},
		{Filter{Rule: "Execution from /dev/shm"}, nil},
		{Filter{Container: "web"}, []int{1}},
		{Filter{Container: "ee97d9"}, []int{1}},
		{Filter{Container: "ab"}, nil}, // prefixes need 3 characters
		{Filter{Container: "host"}, []int{0}},
		{Filter{Host: "node-2"}, []int{1}},
		{Filter{Host: "NODE-*", MinPriority: "critical"}, []int{2}},
	}
	for _, tt := range tests {
		m, err := tt.f.compile()
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for i, a := range as {
			if m.match(a) {
				got = append(got, i)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%+v: got %v want %v", tt.f, got, tt.want)
		}
	}
	if _, err := (Filter{MinPriority: "loud"}).compile(); err == nil {
		t.Error("bad priority accepted")
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), got, *update)
}

func TestFormatGoldenAndEscaping(t *testing.T) {
	for _, color := range []bool{false, true} {
		var b []byte
		for _, a := range samples() {
			a.Time = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			b = AppendLine(b, a, color)
		}
		name := "plain.golden"
		if color {
			name = "color.golden"
		}
		golden(t, name, b)
		if !color && bytes.ContainsAny(b, "\x1b\x07\r\u202e\u0085") {
			t.Errorf("raw control characters reached the terminal:\n%q", b)
		}
		if n := bytes.Count(b, []byte("\n")); n != len(samples()) {
			t.Errorf("%d lines for %d alerts", n, len(samples()))
		}
	}
	// JSON mode: valid one-line JSON, dangerous runes escaped.
	raw := samples()[2].AppendJSON(nil)
	line := appendJSONLine(nil, raw)
	if bytes.ContainsAny(line[:len(line)-1], "\n\u202e") {
		t.Errorf("json line %q", line)
	}
	if _, err := alert.Parse(line); err != nil {
		t.Error(err)
	}
}

// syncBuf is a goroutine-safe buffer.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
func (s *syncBuf) lines() int                  { return strings.Count(s.String(), "\n") }

// startServer runs the sensor's own embedded JetStream server on a free port.
func startServer(t *testing.T) string {
	t.Helper()
	b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.ClientURL()
}

// publish sends alerts the way the NATS sink does and returns the stream
// timestamps.
func publish(t *testing.T, js jetstream.JetStream, as ...*alert.Alert) []time.Time {
	t.Helper()
	subj, _ := alert.ParseSubject("")
	var ts []time.Time
	for _, a := range as {
		ack, err := js.Publish(context.Background(), subj.For(a), a.AppendJSON(nil), jetstream.WithMsgID(a.UUID))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := js.Stream(context.Background(), output.DefaultStream)
		m, err := st.GetMsg(context.Background(), ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, m.Time)
	}
	return ts
}

func runTail(t *testing.T, cfg Config) (*Tail, *syncBuf, *syncBuf, func()) {
	t.Helper()
	out, status := &syncBuf{}, &syncBuf{}
	cfg.Out, cfg.Status = out, status
	tl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	return tl, out, status, stop
}

func TestTailReplayLiveAndFilters(t *testing.T) {
	u := startServer(t)
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: output.DefaultStream, Subjects: []string{"tripline.alerts.>"}}); err != nil {
		t.Fatal(err)
	}
	as := samples()
	ts := publish(t, js, as[:3]...)
	conn := output.NATSConn{URL: u}

	// --all replays everything.
	_, out, _, stop := runTail(t, Config{Conn: conn, All: true})
	testenv.Eventually(t, 10*time.Second, func() bool { return out.lines() == 3 }, "--all")
	stop()
	// --since from the second alert's store time.
	_, out, _, stop = runTail(t, Config{Conn: conn, Start: ts[1]})
	testenv.Eventually(t, 10*time.Second, func() bool { return out.lines() == 2 }, "--since")
	stop()
	if strings.Contains(out.String(), "Read sensitive file") {
		t.Errorf("--since replayed an older alert:\n%s", out)
	}
	// Live, filtered, JSON: old alerts are not shown, new matching ones are.
	tl, out, status, stop := runTail(t, Config{Conn: conn, JSON: true, Filter: Filter{MinPriority: "notice", Rule: "*container*"}})
	<-tl.Ready()
	fresh := *as[1]
	fresh.UUID = "00000000-0000-7000-8000-000000000099" // a new alert (same UUID would be de-duplicated)
	publish(t, js, as[3], as[4], &fresh)
	testenv.Eventually(t, 10*time.Second, func() bool { return tl.Stats().Received == 3 }, "live %+v %s", tl, status)
	stop()
	got := strings.TrimSpace(out.String())
	if strings.Count(got, "\n") != 0 || !strings.Contains(got, `"uuid":"`+fresh.UUID+`"`) {
		t.Errorf("live JSON output:\n%s", got)
	}
	if !strings.Contains(status.String(), "following TRIPLINE_ALERTS") {
		t.Errorf("status: %s", status)
	}
	// A malformed message is reported, not fatal.
	tl, _, status, stop = runTail(t, Config{Conn: conn})
	<-tl.Ready()
	if _, err := js.Publish(context.Background(), "tripline.alerts.x.y", []byte("\x1b[2Jnot json")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return tl.Stats().Malformed == 1 }, "malformed")
	stop()
	if strings.Contains(status.String(), "\x1b") {
		t.Errorf("unescaped status %q", status)
	}
}

func TestTailUnreachableAndMissingStream(t *testing.T) {
	_, _, status, stop := runTail(t, Config{Conn: output.NATSConn{URL: "nats://127.0.0.1:1"}, RetryWait: 50 * time.Millisecond})
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(status.String(), "cannot reach NATS") }, "no message")
	stop()
	if n := strings.Count(status.String(), "cannot reach"); n != 1 {
		t.Errorf("the same error must be printed once, got %d:\n%s", n, status)
	}
	u := startServer(t)
	_, _, status, stop = runTail(t, Config{Conn: output.NATSConn{URL: u}, RetryWait: 50 * time.Millisecond})
	testenv.Eventually(t, 5*time.Second, func() bool { return strings.Contains(status.String(), "stream TRIPLINE_ALERTS not found") }, "no message")
	stop()
	if _, err := New(Config{Out: &syncBuf{}, Status: &syncBuf{}, All: true, Start: time.Now()}); err == nil {
		t.Error("--all with --since accepted")
	}
}

func FuzzAppendEscaped(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[2J", "a\\x1b", "\u202e\u0085\xff", "\r\n\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendEscaped(nil, s)
		for _, r := range string(b) {
			if r < 0x20 || r == 0x7f || dangerousRune(r) || r == 0xfffd && !strings.ContainsRune(s, 0xfffd) {
				t.Fatalf("AppendEscaped(%q) = %q", s, b)
			}
		}
	})
}
