package output

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/testenv"
)

// startServer runs a real nats-server in process with JetStream.
func startServer(t testing.TB, port int, storeDir string, tune func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir,
		NoLog: true, NoSigs: true, ServerName: "test",
	}
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if tune != nil {
		tune(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

func serverPort(s *server.Server) int {
	_, p, _ := net.SplitHostPort(s.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}

func srvURL(s *server.Server) string { return fmt.Sprintf("nats://127.0.0.1:%d", serverPort(s)) }

// runSink starts a NATS sink's Run loop for the test's lifetime.
func runSink(t testing.TB, cfg NATSConfig) *NATS {
	t.Helper()
	n, err := NewNATS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		n.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

func testAlert(i int) *alert.Alert {
	return &alert.Alert{
		Time: time.Date(2026, 1, 2, 3, 4, 5, i, time.UTC), Rule: "Read sensitive file untrusted",
		Priority: alert.PriorityWarning, Source: alert.SourceSyscall,
		Output:       fmt.Sprintf("Sensitive file opened for reading (file=/etc/shadow seq=%d)", i),
		OutputFields: map[string]any{"fd.name": "/etc/shadow", "seq": i, "container.id": "host"},
		Hostname:     "node-1", Tags: []string{"filesystem"},
		UUID: fmt.Sprintf("00000000-0000-7000-8000-%012d", i),
	}
}

// readStream returns every message of the stream in stream order.
func readStream(t testing.TB, u, stream string, want int) []jetstream.Msg {
	t.Helper()
	nc, err := nats.Connect(u)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.Eventually(t, 30*time.Second, func() bool {
		s, err := js.Stream(ctx, stream)
		return err == nil && s.CachedInfo().State.Msgs >= uint64(want)
	}, "stream %s never reached %d messages", stream, want)
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < want {
		batch, err := cons.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, m)
			n++
		}
		if n == 0 {
			t.Fatalf("stream read stalled at %d/%d: %v", len(out), want, batch.Error())
		}
	}
	s, _ := js.Stream(ctx, stream)
	if got := s.CachedInfo().State.Msgs; got != uint64(want) {
		t.Fatalf("stream has %d messages, want exactly %d", got, want)
	}
	return out
}

// checkInOrderOnce checks that msgs carry alerts 0..n-1 exactly once, in order.
func checkInOrderOnce(t testing.TB, msgs []jetstream.Msg, n int) {
	t.Helper()
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		a, err := alert.Parse(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		if want := testAlert(i).UUID; a.UUID != want || m.Headers().Get("Nats-Msg-Id") != want {
			t.Fatalf("message %d is alert %s (header %s), want %s", i, a.UUID, m.Headers().Get("Nats-Msg-Id"), want)
		}
	}
}

type errLog struct {
	mu   sync.Mutex
	errs []error
}

func (e *errLog) add(err error) { e.mu.Lock(); e.errs = append(e.errs, err); e.mu.Unlock() }
func (e *errLog) has(sub string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, err := range e.errs {
		if containsFold(err.Error(), sub) {
			return true
		}
	}
	return false
}
