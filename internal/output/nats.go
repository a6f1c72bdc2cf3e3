package output

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/spool"
)

// Defaults of NATSConfig.
const (
	DefaultStream      = "TRIPLINE_ALERTS"
	DefaultDedupWindow = 10 * time.Minute
)

// NATSConfig configures the NATS JetStream sink.
type NATSConfig struct {
	NATSConn

	// Subject is the subject template (alert.ParseSubject); default
	// alert.DefaultSubjectTemplate, "tripline.alerts.<priority>.<rule>".
	Subject string
	// Stream is the JetStream stream name. Default DefaultStream.
	Stream string
	// CreateStream creates the stream when it is missing, capturing
	// "<template prefix>.>" (tripline.alerts.> by default) with file
	// storage and the limits below. Otherwise a missing stream is an error
	// reported through OnError while alerts keep spooling.
	CreateStream bool
	// Retention limits of a created stream; 0 means unlimited.
	StreamMaxAge   time.Duration
	StreamMaxBytes int64
	StreamMaxMsgs  int64
	// DedupWindow is the stream's duplicate window: JetStream drops a
	// message whose Nats-Msg-Id (the alert UUID) it saw within this window,
	// which is what makes spool replays invisible. Default 10 min.
	DedupWindow time.Duration

	// DataDir is the sensor data directory; the spool lives in
	// DataDir/spool. Required.
	DataDir string
	// SpoolMaxBytes bounds the spool. Default 256 MiB.
	SpoolMaxBytes int64
	// SyncInterval is how often the spool is fsynced and its delivered
	// position persisted. Default 200ms.
	SyncInterval time.Duration
	// QueueSize bounds the in-memory queue in front of the spool. Default 4096.
	QueueSize int
	// MaxInFlight bounds unacknowledged publishes. Default 256.
	MaxInFlight int
	// AckTimeout bounds the wait for one JetStream ack. Default 5s.
	AckTimeout time.Duration
	// RetryWait and MaxRetryWait bound the backoff between connection or
	// publish attempts. Defaults 250ms and 5s.
	RetryWait, MaxRetryWait time.Duration
	// FlushTimeout bounds how long Close waits for spooled alerts to be
	// delivered when connected. Default 2s.
	FlushTimeout time.Duration
	// OnError, if set, receives asynchronous errors (connection, auth,
	// stream, publish), at most once per retry.
	OnError func(error)
}

// NATSStats are the sink's counters, for metrics.
type NATSStats struct {
	Enqueued     uint64 // alerts handed to Publish
	Published    uint64 // acknowledged by JetStream as new messages
	Duplicates   uint64 // acknowledged as duplicates (replays)
	Spooled      uint64 // alerts written to the spool
	Dropped      uint64 // alerts lost (spool full or unwritable)
	PublishErrs  uint64 // failed publish attempts (retried)
	Reconnects   uint64
	SpoolBytes   int64
	SpoolPending uint64 // spooled, not yet acknowledged
	SpoolCorrupt uint64
	Connected    bool
	LastError    string
}

// NATS publishes alerts to JetStream through the spool.
type NATS struct {
	cfg           NATSConfig
	subject       *alert.Subject
	streamSubject string
	spool         *spool.Spool

	// Queue: qmu guards queue; appendMu serialises spool appends so that a
	// spilling caller and the writer keep alert order.
	qmu      sync.Mutex
	queue    []*alert.Alert
	spare    []*alert.Alert
	qsignal  chan struct{}
	appendMu sync.Mutex
	encBuf   []byte
	recBuf   []byte

	ready     chan struct{}
	readyOnce sync.Once
	stop      chan struct{}
	stopOnce  sync.Once
	runDone   chan struct{}
	running   atomic.Bool
	started   atomic.Bool
	reconn    chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	enqueued, published, duplicates, spooled, dropped, publishErrs, reconnects atomic.Uint64
	connected                                                                  atomic.Bool
	lastErr                                                                    atomic.Pointer[string]
	reportedDrops                                                              uint64
	lastDropReport                                                             time.Time
}

// NewNATS validates cfg and opens the spool; Run connects and delivers.
func NewNATS(cfg NATSConfig) (*NATS, error) {
	if err := cfg.NATSConn.Validate(); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: NATS output needs a data directory for its spool", ErrConfig)
	}
	subj, err := alert.ParseSubject(cfg.Subject)
	if err != nil {
		return nil, err
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.StreamMaxAge > 0 && cfg.DedupWindow > cfg.StreamMaxAge {
		cfg.DedupWindow = cfg.StreamMaxAge // JetStream requires window <= max age
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = 200 * time.Millisecond
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 5 * time.Second
	}
	if cfg.RetryWait <= 0 {
		cfg.RetryWait = 250 * time.Millisecond
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 5 * time.Second
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 2 * time.Second
	}
	n := &NATS{
		cfg: cfg, subject: subj,
		qsignal: make(chan struct{}, 1), reconn: make(chan struct{}, 1),
		ready: make(chan struct{}), stop: make(chan struct{}), runDone: make(chan struct{}),
	}
	if p := subj.Prefix(); p != "" {
		n.streamSubject = p + ".>"
	} else if cfg.CreateStream {
		return nil, fmt.Errorf("%w: subject template %q must start with a literal token to derive the stream's subjects", ErrConfig, subj)
	}
	sp, err := spool.Open(spool.Config{Dir: filepath.Join(cfg.DataDir, "spool"), MaxBytes: cfg.SpoolMaxBytes})
	if err != nil {
		return nil, fmt.Errorf("output: opening spool: %w", err)
	}
	n.spool = sp
	return n, nil
}

// Name implements Sink.
func (n *NATS) Name() string { return "nats" }

// Ready is closed once connected and the stream is in place.
func (n *NATS) Ready() <-chan struct{} { return n.ready }

// Publish implements Sink: it enqueues a, spilling to the spool itself when
// the queue is full. It never waits on the network.
func (n *NATS) Publish(a *alert.Alert) {
	n.enqueued.Add(1)
	n.qmu.Lock()
	if len(n.queue) < n.cfg.QueueSize && n.running.Load() {
		n.queue = append(n.queue, a)
		n.qmu.Unlock()
		select {
		case n.qsignal <- struct{}{}:
		default:
		}
		return
	}
	n.qmu.Unlock()
	n.flushQueue(a)
}

// flushQueue appends the queued alerts, then extra (if any), to the spool.
func (n *NATS) flushQueue(extra *alert.Alert) {
	n.appendMu.Lock()
	defer n.appendMu.Unlock()
	n.qmu.Lock()
	batch := n.queue
	n.queue = n.spare[:0]
	n.qmu.Unlock()
	for i, a := range batch {
		n.appendLocked(a)
		batch[i] = nil
	}
	if extra != nil {
		n.appendLocked(extra)
	}
	n.qmu.Lock()
	n.spare = batch[:0]
	n.qmu.Unlock()
}

// Spool record data: subject length(2) | subject | id length(1) | id | JSON.
func (n *NATS) appendLocked(a *alert.Alert) {
	n.encBuf = a.AppendJSON(n.encBuf[:0])
	if len(n.encBuf) > maxAlertJSON {
		// Event data made this alert huge: shorten long strings (like
		// falcosidekick does) rather than let it exceed the broker's limits.
		n.encBuf = shorten(a).AppendJSON(n.encBuf[:0])
	}
	b := n.recBuf[:0]
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = n.subject.Append(b, a)
	binary.LittleEndian.PutUint16(b, uint16(len(b)-2))
	id := a.UUID
	if len(id) > 255 {
		id = id[:255]
	}
	b = append(b, byte(len(id)))
	b = append(b, id...)
	b = append(b, n.encBuf...)
	n.recBuf = b
	prio := uint8(alert.PriorityDebug)
	if a.Priority.Valid() {
		prio = uint8(a.Priority)
	}
	if _, err := n.spool.Append(prio, b); err != nil {
		n.dropped.Add(1)
		n.setErr(fmt.Errorf("output: spooling alert: %w", err))
		return
	}
	n.spooled.Add(1)
}

func decodeRecord(b []byte) (subject, id string, data []byte, ok bool) {
	if len(b) < 3 {
		return "", "", nil, false
	}
	sl := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+sl+1 {
		return "", "", nil, false
	}
	subject = string(b[2 : 2+sl])
	il := int(b[2+sl])
	if len(b) < 3+sl+il {
		return "", "", nil, false
	}
	return subject, string(b[3+sl : 3+sl+il]), b[3+sl+il:], true
}

func (n *NATS) setErr(err error) {
	s := err.Error()
	n.lastErr.Store(&s)
	if n.cfg.OnError != nil {
		n.cfg.OnError(err)
	}
}

// Stats returns a snapshot of the counters.
func (n *NATS) Stats() NATSStats {
	st := n.spool.Stats()
	s := NATSStats{
		Enqueued: n.enqueued.Load(), Published: n.published.Load(), Duplicates: n.duplicates.Load(),
		Spooled: n.spooled.Load(), Dropped: n.dropped.Load() + st.Dropped, PublishErrs: n.publishErrs.Load(),
		Reconnects: n.reconnects.Load(), SpoolBytes: st.Bytes, SpoolPending: st.Pending,
		SpoolCorrupt: st.Corrupt, Connected: n.connected.Load(),
	}
	if e := n.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Run delivers spooled alerts until ctx ends or Close is called. It returns
// nil on a clean stop; connection problems are retried forever, never
// returned.
func (n *NATS) Run(ctx context.Context) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if !n.running.CompareAndSwap(false, true) {
		return errors.New("output: NATS sink already running")
	}
	n.started.Store(true)
	defer close(n.runDone)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.writer(ctx)
	}()
	n.sender(ctx)
	n.running.Store(false)
	wg.Wait()
	n.flushQueue(nil)
	return n.spool.Sync()
}

// writer moves queued alerts to the spool, fsyncs it periodically and
// reports spool losses.
func (n *NATS) writer(ctx context.Context) {
	t := time.NewTicker(n.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.qsignal:
			n.flushQueue(nil)
		case <-t.C:
			n.flushQueue(nil)
			if err := n.spool.Sync(); err != nil {
				n.setErr(err)
			}
			n.reportDrops()
		}
	}
}

// reportDrops emits an internal alert when alerts were lost, at most every 10s.
func (n *NATS) reportDrops() {
	total := n.dropped.Load() + n.spool.Stats().Dropped
	if total == n.reportedDrops || time.Since(n.lastDropReport) < 10*time.Second {
		return
	}
	lost := total - n.reportedDrops
	n.reportedDrops, n.lastDropReport = total, time.Now()
	n.Publish(alert.Internal(alert.RuleSpoolDrop, alert.PriorityCritical,
		fmt.Sprintf("Tripline internal: alert spool overflow. %d alerts dropped (lowest priority, oldest first); NATS unreachable or too slow.", lost),
		map[string]any{"n_dropped": lost, "n_dropped_total": total, "spool.max_bytes": n.cfg.SpoolMaxBytes}))
}

type inflight struct {
	rec spool.Record
	paf jetstream.PubAckFuture
}

// sender connects, ensures the stream and publishes the spool in order.
func (n *NATS) sender(ctx context.Context) {
	wait := backoff(n.cfg.RetryWait, n.cfg.MaxRetryWait)
	attempt := 0
	sleep := func() bool {
		attempt++
		t := time.NewTimer(wait(attempt))
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		nc, err := n.cfg.NATSConn.Connect(
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				n.connected.Store(false)
				if err != nil {
					n.setErr(fmt.Errorf("output: NATS disconnected: %w", err))
				}
			}),
			nats.ReconnectHandler(func(*nats.Conn) {
				n.reconnects.Add(1)
				n.connected.Store(true)
				select {
				case n.reconn <- struct{}{}:
				default:
				}
			}),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				n.setErr(fmt.Errorf("output: NATS: %w", err))
			}),
		)
		if err != nil {
			n.setErr(fmt.Errorf("output: %w", err))
			if !sleep() {
				return
			}
			continue
		}
		n.connected.Store(true)
		err = n.deliver(ctx, nc, &attempt, sleep)
		n.connected.Store(false)
		nc.Close()
		if err != nil {
			n.setErr(err)
			if !sleep() {
				return
			}
		}
	}
}

// deliver runs on one connection until ctx ends (nil) or the connection is
// closed for good (error).
func (n *NATS) deliver(ctx context.Context, nc *nats.Conn, attempt *int, sleep func() bool) error {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(n.cfg.MaxInFlight+1),
		jetstream.WithPublishAsyncTimeout(n.cfg.AckTimeout))
	if err != nil {
		return fmt.Errorf("output: JetStream: %w", err)
	}
	for {
		if err := n.ensureStream(ctx, js); err == nil {
			break
		} else if ctx.Err() != nil {
			return nil
		} else {
			n.setErr(err)
			if nc.IsClosed() {
				return errors.New("output: NATS connection closed")
			}
			if !sleep() {
				return nil
			}
		}
	}
	n.readyOnce.Do(func() { close(n.ready) })
	var window []inflight
	for ctx.Err() == nil {
		if nc.IsClosed() {
			return errors.New("output: NATS connection closed")
		}
		// Fill the window.
		failed := false
		for len(window) < n.cfg.MaxInFlight && nc.IsConnected() {
			rec, ok, err := n.spool.Next()
			if err != nil {
				n.setErr(err)
				break
			}
			if !ok {
				break
			}
			subj, id, data, ok := decodeRecord(rec.Data)
			if !ok {
				n.spool.Ack(rec) // undecodable: skip (counted as dropped)
				n.dropped.Add(1)
				continue
			}
			msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
			paf, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(id))
			if errors.Is(err, nats.ErrMaxPayload) {
				// Permanent for this message: skip it instead of retrying forever.
				n.spool.Ack(rec)
				n.dropped.Add(1)
				n.setErr(fmt.Errorf("output: alert %s dropped: %w", id, err))
				continue
			}
			if err != nil {
				n.publishErrs.Add(1)
				n.setErr(fmt.Errorf("output: publishing to %s: %w", subj, err))
				failed = true
				break
			}
			window = append(window, inflight{rec, paf})
		}
		if !failed && len(window) > 0 {
			// Settle the oldest publish.
			head := window[0]
			select {
			case ack := <-head.paf.Ok():
				if ack.Duplicate {
					n.duplicates.Add(1)
				} else {
					n.published.Add(1)
				}
				n.spool.Ack(head.rec)
				window[0] = inflight{}
				window = window[1:]
				*attempt = 0
				continue
			case err := <-head.paf.Err():
				n.publishErrs.Add(1)
				n.setErr(fmt.Errorf("output: JetStream publish to %s: %w", head.paf.Msg().Subject, err))
				failed = true
			case <-ctx.Done():
				return nil
			}
		}
		if failed {
			// Abandon the window and resend from the first unacknowledged
			// alert; JetStream drops the repeats by message id.
			window = window[:0]
			n.spool.Rewind()
			if nc.IsConnected() {
				if !sleep() {
					return nil
				}
				// The broker may have lost the stream (a wiped store):
				// recreate it rather than retry into the void.
				if err := n.ensureStream(ctx, js); err != nil && ctx.Err() == nil {
					n.setErr(err)
				}
			}
			continue
		}
		if !nc.IsConnected() {
			// nats.go reconnects on its own; resume as soon as it has.
			select {
			case <-ctx.Done():
				return nil
			case <-n.reconn:
			case <-time.After(n.cfg.MaxRetryWait):
			}
			continue
		}
		// Caught up: wait for new alerts.
		select {
		case <-ctx.Done():
			return nil
		case <-n.spool.Notify():
		case <-time.After(n.cfg.SyncInterval):
		}
	}
	return nil
}

func (n *NATS) ensureStream(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.AckTimeout)
	defer cancel()
	_, err := js.Stream(ctx, n.cfg.Stream)
	if err == nil {
		return nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("output: looking up stream %s: %w", n.cfg.Stream, err)
	}
	if !n.cfg.CreateStream {
		return fmt.Errorf("output: JetStream stream %s does not exist and creating it is not allowed", n.cfg.Stream)
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        n.cfg.Stream,
		Description: "Tripline alerts",
		Subjects:    []string{n.streamSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      n.cfg.StreamMaxAge,
		MaxBytes:    orUnlimited(n.cfg.StreamMaxBytes),
		MaxMsgs:     orUnlimited(n.cfg.StreamMaxMsgs),
		Duplicates:  n.cfg.DedupWindow,
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("output: creating stream %s on %s: %w", n.cfg.Stream, n.streamSubject, err)
	}
	return nil
}

func orUnlimited(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

// Close stops accepting alerts, moves the queue to the spool, waits up to
// FlushTimeout for delivery when connected, stops Run and closes the spool.
// Alerts still spooled are delivered by the next sink on the same DataDir.
func (n *NATS) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		n.flushQueue(nil)
		if n.running.Load() && n.connected.Load() {
			deadline := time.Now().Add(n.cfg.FlushTimeout)
			for n.spool.Stats().Pending > 0 && time.Now().Before(deadline) && n.connected.Load() {
				time.Sleep(5 * time.Millisecond)
			}
		}
		n.stopOnce.Do(func() { close(n.stop) })
		if n.started.Load() {
			<-n.runDone
		}
		n.flushQueue(nil)
		n.closeErr = n.spool.Close()
	})
	return n.closeErr
}

// maxAlertJSON bounds one alert's JSON; the broker's default max payload is 1 MiB.
const maxAlertJSON = 256 << 10

// shorten returns a copy of a with strings longer than 1 KiB cut to 1 KiB
// plus "[...]".
func shorten(a *alert.Alert) *alert.Alert {
	const limit = 1 << 10
	cut := func(s string) string {
		if len(s) <= limit {
			return s
		}
		return strings.ToValidUTF8(s[:limit], "") + "[...]"
	}
	c := *a
	c.Output = cut(a.Output)
	c.Rule = cut(a.Rule)
	c.OutputFields = make(map[string]any, len(a.OutputFields))
	for k, v := range a.OutputFields {
		if len(c.OutputFields) >= 256 {
			break
		}
		if s, ok := v.(string); ok {
			v = cut(s)
		} else if _, ok := v.([]string); ok {
			v = cut(fmt.Sprint(v))
		}
		c.OutputFields[cut(k)] = v
	}
	if len(c.Tags) > 64 {
		c.Tags = c.Tags[:64]
	}
	return &c
}
