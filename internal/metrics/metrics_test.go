package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestServer(t *testing.T) {
	var unhealthy atomic.Bool
	reg := NewRegistry()
	var n atomic.Uint64
	CounterFunc(reg, "events_total", "events", map[string]string{"type": "open"}, func() float64 { return float64(n.Load()) })
	s := New(Config{Addr: "127.0.0.1:0", Registry: reg, Health: func() error {
		if unhealthy.Load() {
			return errors.New("capture stopped")
		}
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("not ready")
	}
	n.Store(42)
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `tripline_events_total{type="open"} 42`) {
		t.Fatalf("metrics: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	unhealthy.Store(true)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "capture stopped") {
		t.Fatalf("healthz unhealthy: %d %s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
