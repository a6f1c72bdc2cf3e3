// Package metrics serves Prometheus /metrics and /healthz for the daemon.
// Stages do not depend on Prometheus: they expose Stats() snapshots, and the
// wiring registers collectors that read those snapshots at scrape time, so the
// per-event hot path never touches a metric.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every Tripline metric.
const Namespace = "tripline"

// Config configures the server.
type Config struct {
	Addr     string               // listen address, e.g. 127.0.0.1:9376
	Registry *prometheus.Registry // nil: a new registry with Go and process collectors
	// Health returns nil while the sensor is healthy; /healthz answers 503
	// with the error text otherwise. Nil means always healthy.
	Health func() error
}

// Server serves /metrics and /healthz.
type Server struct {
	cfg   Config
	reg   *prometheus.Registry
	ready chan struct{}
	addr  string

	mu     sync.Mutex
	srv    *http.Server
	closed bool
}

// New returns a server; it listens when Run is called.
func New(cfg Config) *Server {
	reg := cfg.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	return &Server{cfg: cfg, reg: reg, ready: make(chan struct{})}
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Registry returns the registry served on /metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Ready is closed once the server listens.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr returns the bound address once Ready is closed.
func (s *Server) Addr() string { return s.addr }

// Run listens and serves until ctx is done or Close is called.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("metrics: listening on %s: %w", s.cfg.Addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if s.cfg.Health != nil {
			if err := s.cfg.Health(); err != nil {
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.srv = srv
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	close(s.ready)
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serving: %w", err)
	}
	return nil
}

// Close stops the server; it is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}

// CounterFunc registers a counter whose value f reads at scrape time.
func CounterFunc(reg prometheus.Registerer, name, help string, labels prometheus.Labels, f func() float64) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: Namespace, Name: name, Help: help, ConstLabels: labels,
	}, f))
}

// GaugeFunc registers a gauge whose value f reads at scrape time.
func GaugeFunc(reg prometheus.Registerer, name, help string, labels prometheus.Labels, f func() float64) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: Namespace, Name: name, Help: help, ConstLabels: labels,
	}, f))
}
