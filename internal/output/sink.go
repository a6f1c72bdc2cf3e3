package output

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/tripline/tripline/internal/alert"
)

// Errors.
var (
	ErrSpec   = errors.New("output: invalid output spec")
	ErrConfig = errors.New("output: invalid config")
	ErrClosed = errors.New("output: sink closed")
)

// Sink receives alerts.
type Sink interface {
	// Publish hands a over; it does not block on the network.
	Publish(a *alert.Alert)
	// Close flushes what is pending and releases resources; idempotent.
	Close() error
	// Name identifies the sink in logs and metrics ("stdout", "file", "nats").
	Name() string
}

// Runner is implemented by sinks with background work (NATS): the caller
// runs Run in a goroutine for the sink's lifetime.
type Runner interface {
	Run(ctx context.Context) error
}

// Parse builds sinks from specs: "stdout", "file:PATH", "nats" (uses
// natsCfg) or a NATS URL "nats://…"/"tls://…" (overrides natsCfg.URL).
func Parse(specs []string, stdout io.Writer, natsCfg NATSConfig) ([]Sink, error) {
	var sinks []Sink
	fail := func(err error) ([]Sink, error) {
		for _, s := range sinks {
			s.Close()
		}
		return nil, err
	}
	seen := map[string]bool{}
	for _, spec := range specs {
		spec = strings.TrimSpace(spec)
		kind := spec
		if i := strings.IndexByte(spec, ':'); i >= 0 {
			kind = spec[:i]
		}
		if seen[spec] {
			return fail(fmt.Errorf("%w: %q given twice", ErrSpec, spec))
		}
		seen[spec] = true
		switch {
		case spec == "stdout":
			sinks = append(sinks, NewStdout(stdout))
		case kind == "file":
			f, err := NewFile(strings.TrimPrefix(spec, "file:"))
			if err != nil {
				return fail(err)
			}
			sinks = append(sinks, f)
		case spec == "nats" || kind == "nats" || kind == "tls":
			cfg := natsCfg
			if spec != "nats" {
				cfg.URL = spec
			}
			n, err := NewNATS(cfg)
			if err != nil {
				return fail(err)
			}
			sinks = append(sinks, n)
		default:
			return fail(fmt.Errorf("%w: %q (want stdout, file:PATH, nats or a nats:// URL)", ErrSpec, spec))
		}
	}
	return sinks, nil
}

// LineStats are the counters of the stdout and file sinks.
type LineStats struct {
	Written uint64
	Errors  uint64
}

// Lines writes one JSON alert per line to a writer (stdout or a file).
type Lines struct {
	name string
	c    io.Closer

	mu     sync.Mutex
	w      *bufio.Writer
	buf    []byte
	stats  LineStats
	closed bool
}

// NewStdout returns a sink writing JSON lines to w, flushed per alert (like
// Falco's unbuffered stdout).
func NewStdout(w io.Writer) *Lines {
	return &Lines{name: "stdout", w: bufio.NewWriterSize(w, 64<<10)}
}

// NewFile returns a sink appending JSON lines to path (created 0600).
func NewFile(path string) (*Lines, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: file: needs a path", ErrSpec)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("output: opening %s: %w", path, err)
	}
	return &Lines{name: "file", c: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// Name implements Sink.
func (l *Lines) Name() string { return l.name }

// Publish implements Sink; write errors are counted.
func (l *Lines) Publish(a *alert.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.stats.Errors++
		return
	}
	l.buf = append(a.AppendJSON(l.buf[:0]), '\n')
	_, err := l.w.Write(l.buf)
	if err == nil {
		err = l.w.Flush()
	}
	if err != nil {
		l.stats.Errors++
		return
	}
	l.stats.Written++
}

// Stats returns the counters.
func (l *Lines) Stats() LineStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close implements Sink.
func (l *Lines) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.w.Flush()
	if l.c != nil {
		if cerr := l.c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
