package tail

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/output"
)

// Config configures a Tail.
type Config struct {
	// Conn reaches the broker; the default URL is the embedded broker's.
	Conn output.NATSConn
	// Stream is the alert stream. Default output.DefaultStream.
	Stream string
	Filter Filter
	// Start, when set, replays alerts stored since then; All replays the
	// whole stream. Otherwise only new alerts are shown.
	Start time.Time
	All   bool
	// JSON prints each alert as its raw (compacted, escaped) JSON line.
	JSON bool
	// Color enables ANSI colors in the default view.
	Color bool
	// Out receives alerts; Status receives connection messages. Required.
	Out, Status io.Writer
	// RetryWait is the delay between connection attempts. Default 2s.
	RetryWait time.Duration
}

// Stats are the tail counters.
type Stats struct {
	Received, Shown, Malformed uint64
}

// Tail follows the alert stream.
type Tail struct {
	cfg   Config
	match *matcher
	ready chan struct{}
	once  sync.Once

	mu    sync.Mutex
	stats Stats
	buf   []byte
}

// New validates cfg.
func New(cfg Config) (*Tail, error) {
	if cfg.Out == nil || cfg.Status == nil {
		return nil, errors.New("tail: Config.Out and Config.Status are required")
	}
	if err := cfg.Conn.Validate(); err != nil {
		return nil, fmt.Errorf("tail: %w", err)
	}
	if cfg.Stream == "" {
		cfg.Stream = output.DefaultStream
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 2 * time.Second
	}
	if cfg.All && !cfg.Start.IsZero() {
		return nil, errors.New("tail: choose either --all or --since")
	}
	m, err := cfg.Filter.compile()
	if err != nil {
		return nil, err
	}
	return &Tail{cfg: cfg, match: m, ready: make(chan struct{})}, nil
}

// Ready is closed once the consumer is in place.
func (t *Tail) Ready() <-chan struct{} { return t.ready }

// Stats returns the counters.
func (t *Tail) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

func (t *Tail) status(format string, args ...any) {
	fmt.Fprintf(t.cfg.Status, "tail: "+format+"\n", args...)
}

// Run follows the stream until ctx ends; it returns nil then. It keeps
// retrying while the broker is unreachable or the stream is missing.
func (t *Tail) Run(ctx context.Context) error {
	var lastErr string
	var lastSeq uint64 // resume point across reconnects in replay modes
	for {
		err := t.session(ctx, &lastSeq)
		if ctx.Err() != nil {
			return nil
		}
		var oe outputError
		if errors.As(err, &oe) {
			return oe.err // e.g. a closed pipe: retrying cannot help
		}
		if err != nil && err.Error() != lastErr {
			t.status("%v; retrying every %v", err, t.cfg.RetryWait)
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(t.cfg.RetryWait):
		}
	}
}

func (t *Tail) session(ctx context.Context, lastSeq *uint64) error {
	nc, err := t.cfg.Conn.Connect(nats.Name("tripline-tail"))
	if err != nil {
		return fmt.Errorf("cannot reach NATS: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = js.Stream(cctx, t.cfg.Stream)
	cancel()
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("stream %s not found on %s (is a sensor publishing there?)", t.cfg.Stream, t.cfg.Conn.Redacted())
		}
		return fmt.Errorf("stream %s on %s: %w", t.cfg.Stream, t.cfg.Conn.Redacted(), err)
	}
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	switch {
	case *lastSeq > 0:
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, *lastSeq+1
	case t.cfg.All:
		occ.DeliverPolicy = jetstream.DeliverAllPolicy
	case !t.cfg.Start.IsZero():
		start := t.cfg.Start
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := js.OrderedConsumer(ctx, t.cfg.Stream, occ)
	if err != nil {
		return fmt.Errorf("creating consumer on %s: %w", t.cfg.Stream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consuming %s: %w", t.cfg.Stream, err)
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	t.once.Do(func() { close(t.ready) })
	t.status("following %s on %s", t.cfg.Stream, t.cfg.Conn.Redacted())
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return fmt.Errorf("reading %s: %w", t.cfg.Stream, err)
		}
		if md, err := m.Metadata(); err == nil {
			*lastSeq = md.Sequence.Stream
		}
		if err := t.show(m.Subject(), m.Data()); err != nil {
			return outputError{fmt.Errorf("tail: writing: %w", err)}
		}
	}
}

// show filters and prints one message.
func (t *Tail) show(subject string, data []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stats.Received++
	a, err := alert.Parse(data)
	if err != nil {
		t.stats.Malformed++
		t.buf = append(t.buf[:0], "tail: skipping malformed message on "...)
		t.buf = AppendEscaped(t.buf, subject)
		t.buf = append(t.buf, ": "...)
		t.buf = AppendEscaped(t.buf, err.Error())
		t.buf = append(t.buf, '\n')
		_, werr := t.cfg.Status.Write(t.buf)
		return werr
	}
	if !t.match.match(a) {
		return nil
	}
	t.stats.Shown++
	if t.cfg.JSON {
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return nil // Parse accepted it, so this cannot happen
		}
		t.buf = appendJSONLine(t.buf[:0], c.Bytes())
	} else {
		t.buf = AppendLine(t.buf[:0], a, t.cfg.Color)
	}
	_, err = t.cfg.Out.Write(t.buf)
	return err
}

type outputError struct{ err error }

func (e outputError) Error() string { return e.err.Error() }
