package enrich

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripline/tripline/internal/event"
)

// Sentinel errors of Run.
var (
	ErrClosed  = errors.New("enrich: closed")                 // Run called after Close
	ErrRunning = errors.New("enrich: Run is already running") // Run called twice
)

// Config configures an Enricher. The zero value is usable.
type Config struct {
	// Socket is containerd's gRPC socket. Default /run/containerd/containerd.sock.
	Socket string
	// Namespaces limits the containerd namespaces followed; nil means all.
	Namespaces []string
	// MissWait is how long Enrich may wait for the metadata of a container
	// not in the cache yet (while it is fetched from containerd). Default
	// 100ms, capped at 100ms; negative means never wait.
	MissWait time.Duration
	// DeleteGrace is how long a deleted container stays in the cache, so
	// late events of a short-lived container still get its metadata.
	// Default 30s.
	DeleteGrace time.Duration
	// NegativeTTL is how long a container id that containerd did not know
	// is remembered as unknown (its events then get the bare id without
	// waiting). Default 5s.
	NegativeTTL time.Duration
	// MaxWaitsPerSec bounds how many misses per second may wait, so that a
	// flood of unknown ids (say, cgroups named like containers by a
	// delegated user) cannot stall the pipeline. Default 20.
	MaxWaitsPerSec int
	// MaxWaitPerSec bounds the time misses may wait in each second, in
	// all: the events are read on one goroutine, so a containerd that
	// answers slowly would otherwise hold the reader for MaxWaitsPerSec
	// times MissWait (two seconds a second) and the kernel's ring would
	// fill. Default 500ms: half the reader's time, five full waits, so a
	// burst of container starts on a loaded node still gets its metadata.
	MaxWaitPerSec time.Duration
	// RetryMin and RetryMax bound the exponential backoff between
	// connection attempts. Defaults 200ms and 5s.
	RetryMin, RetryMax time.Duration
	// ConnectTimeout bounds one connection attempt. Default 2s.
	ConnectTimeout time.Duration
	// RPCTimeout bounds each containerd call. Default 5s.
	RPCTimeout time.Duration
	// EventBuffer is the capacity of the Events channel; container events
	// that find it full are dropped and counted. Default 256.
	EventBuffer int
	// SkipExisting: do not emit container events for the containers already
	// running when the enricher first connects.
	SkipExisting bool
	// OnStateChange, when set, is called (from Run's goroutine) each time
	// the connection to containerd is established or lost; err is why it
	// was lost or could not be made.
	OnStateChange func(connected bool, err error)
	// ProcFS is the proc filesystem, read for the init process of a
	// started container. Default /proc.
	ProcFS string
}

// Defaults.
const (
	DefaultSocket      = "/run/containerd/containerd.sock"
	DefaultMissWait    = 100 * time.Millisecond
	DefaultDeleteGrace = 30 * time.Second
	DefaultNegativeTTL = 5 * time.Second
	maxPlaceholders    = 4096
)

// Stats are counters and state of an Enricher.
type Stats struct {
	Connected    bool
	Containers   int    // cache entries (deleted ones in their grace included)
	Hits         uint64 // lookups served from the cache
	Misses       uint64 // lookups of a container id without metadata in the cache
	Waits        uint64 // misses that waited for a fetch
	WaitTimeouts uint64 // waits that ended without metadata
	Fetches      uint64 // direct container fetches from containerd
	FetchErrors  uint64
	Outages      uint64 // outages: a lost connection, or a first connection failing; once each, however many retries
	Reconnects   uint64 // successful connections after the first
	Events       uint64 // containerd events processed
	Started      uint64 // container events emitted
	Dropped      uint64 // container events dropped on a full channel
	Invalid      uint64 // containerd records rejected by validation
	Expired      uint64 // entries removed after their grace
}

// centry is a cache entry. The snapshot is replaced, never mutated.
type centry struct {
	c           *event.Container
	rec         record
	placeholder bool  // no metadata: containerd did not know the id (yet)
	deletedAt   int64 // ns, 0 while the container exists
	expires     int64 // placeholders: ns
}

// Enricher keeps a cache of containerd's containers and sets the container
// of events. See the package doc.
type Enricher struct {
	cfg Config

	mu      sync.RWMutex
	byID    map[string]*centry
	nsKnown atomic.Pointer[map[string]bool] // copy-on-write under mu; read without lock
	pending map[string]chan struct{}
	nPlace  int

	waitMu                          sync.Mutex
	waitSecond, waitUsed, waitSpent int64 // waitSpent in ns

	ready     chan struct{}
	readyOnce sync.Once
	events    chan *event.Event
	done      chan struct{}
	closeOnce sync.Once
	running   atomic.Bool

	cli    atomic.Pointer[conn] // current connection, nil while down
	ctx    context.Context      // canceled by Close; parent of fetches
	cancel context.CancelFunc

	connected atomic.Bool
	hits, misses, waits, waitTimeouts, fetches, fetchErrors, outages, reconnects,
	nevents, started, dropped, invalid, expired atomic.Uint64
}

// New returns an Enricher; call Run to connect and follow containerd.
func New(cfg Config) (*Enricher, error) {
	if cfg.Socket == "" {
		cfg.Socket = DefaultSocket
	}
	if cfg.MissWait == 0 || cfg.MissWait > DefaultMissWait {
		cfg.MissWait = DefaultMissWait
	}
	if cfg.DeleteGrace <= 0 {
		cfg.DeleteGrace = DefaultDeleteGrace
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.MaxWaitsPerSec <= 0 {
		cfg.MaxWaitsPerSec = 20
	}
	if cfg.MaxWaitPerSec <= 0 {
		cfg.MaxWaitPerSec = 500 * time.Millisecond
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 200 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = 5 * time.Second
		if cfg.RetryMax < cfg.RetryMin {
			cfg.RetryMax = cfg.RetryMin
		}
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 2 * time.Second
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = 5 * time.Second
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = 256
	}
	if cfg.ProcFS == "" {
		cfg.ProcFS = "/proc"
	}
	for _, ns := range cfg.Namespaces {
		if !validID(ns) {
			return nil, errors.New("enrich: invalid namespace name " + trunc(ns, 80))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Enricher{
		cfg:     cfg,
		byID:    make(map[string]*centry),
		pending: make(map[string]chan struct{}),
		ready:   make(chan struct{}),
		events:  make(chan *event.Event, cfg.EventBuffer),
		done:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
	e.nsKnown.Store(new(map[string]bool))
	for _, ns := range cfg.Namespaces {
		e.addNS(ns)
	}
	return e, nil
}

// Ready is closed after the first successful listing of containerd.
func (e *Enricher) Ready() <-chan struct{} { return e.ready }

// Events delivers a TypeContainer event per container (task) start. It is
// closed when Run returns.
func (e *Enricher) Events() <-chan *event.Event { return e.events }

// Close stops Run and the fetches in flight. Idempotent.
func (e *Enricher) Close() error {
	e.closeOnce.Do(func() {
		close(e.done)
		e.cancel()
	})
	return nil
}

// Stats returns the counters. Safe for concurrent use.
func (e *Enricher) Stats() Stats {
	e.mu.RLock()
	n := len(e.byID)
	e.mu.RUnlock()
	return Stats{
		Connected: e.connected.Load(), Containers: n,
		Hits: e.hits.Load(), Misses: e.misses.Load(), Waits: e.waits.Load(), WaitTimeouts: e.waitTimeouts.Load(),
		Fetches: e.fetches.Load(), FetchErrors: e.fetchErrors.Load(), Outages: e.outages.Load(),
		Reconnects: e.reconnects.Load(), Events: e.nevents.Load(), Started: e.started.Load(),
		Dropped: e.dropped.Load(), Invalid: e.invalid.Load(), Expired: e.expired.Load(),
	}
}

// Lookup returns the cached metadata of a container by full id (or any id
// containerd knows). Placeholders (ids containerd did not know) are not
// returned.
func (e *Enricher) Lookup(id string) (*event.Container, bool) {
	ce := e.entry(id)
	if ce == nil || ce.placeholder {
		return nil, false
	}
	return ce.c, true
}

// entry returns the cache entry of id (placeholders included), nil if none.
func (e *Enricher) entry(id string) *centry {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.byID[id]
}

// ContainerIDOf returns the full container id a cgroup path names, "" for
// the host: a hex id in the path, or the last component of /<ns>/<id> when
// containerd knows that id. It does not wait; wire it to
// proc.Config.ContainerID.
func (e *Enricher) ContainerIDOf(cgroupPath string) string {
	if id, ok := ContainerID(cgroupPath); ok {
		return id
	}
	if ns, id, ok := splitNSPath(cgroupPath); ok && (*e.nsKnown.Load())[ns] {
		if c, ok := e.Lookup(id); ok {
			return c.FullID
		}
	}
	return ""
}

// Enrich sets ev.Proc.ContainerID (full id, "" for the host) and
// ev.Container (nil for the host) from ev.Proc.CgroupPath, or from
// ev.Proc.ContainerID when the event has no cgroup path. A container not in
// the cache may make it wait up to Config.MissWait while its metadata is
// fetched; the event then goes on with what is known (the bare id).
func (e *Enricher) Enrich(ev *event.Event) {
	p := &ev.Proc
	var id, nsHint string
	ok, nonHex := false, false
	if p.CgroupPath != "" {
		id, ok = ContainerID(p.CgroupPath)
		if !ok {
			// Plain containerd names its cgroups /<namespace>/<id> with
			// any valid id: a container only when containerd knows it.
			ns, cid, two := splitNSPath(p.CgroupPath)
			// Host paths (/process_api/<hex>, /user.slice/...) stop at
			// the namespace check, without a lock.
			if two && (*e.nsKnown.Load())[ns] && validID(cid) {
				id, nsHint, ok, nonHex = cid, ns, true, true
			}
		}
	} else if p.ContainerID != "" && p.ContainerID != event.HostID {
		id, ok = p.ContainerID, true
	}
	if !ok {
		p.ContainerID, ev.Container = "", nil
		return
	}
	ce := e.entry(id)
	if ce != nil && !ce.placeholder {
		e.hits.Add(1)
		p.ContainerID, ev.Container = ce.c.FullID, ce.c
		return
	}
	if nsHint == "" && p.CgroupPath != "" {
		if ns, _, two := splitNSPath(p.CgroupPath); two {
			nsHint = ns
		}
	}
	ce = e.miss(id, nsHint, ce)
	if nonHex && ce.placeholder {
		// Not a hex id and containerd does not know it: not a container.
		p.ContainerID, ev.Container = "", nil
		return
	}
	p.ContainerID, ev.Container = ce.c.FullID, ce.c
}

// miss handles a lookup without metadata: wait (bounded) for a fetch, else
// fall back to a placeholder.
func (e *Enricher) miss(id, nsHint string, ce *centry) *centry {
	e.misses.Add(1)
	now := time.Now().UnixNano()
	if ce != nil && ce.expires > now {
		return ce // recently unknown: do not wait again
	}
	if got := e.waitFetch(id, nsHint, now); got != nil {
		return got
	}
	return e.placeholder(id, now)
}

// waitFetch fetches id's metadata and waits for it, within the budget of
// the second of now; nil when it may not wait or the metadata did not come.
func (e *Enricher) waitFetch(id, nsHint string, now int64) *centry {
	if e.cfg.MissWait <= 0 || e.cli.Load() == nil {
		return nil
	}
	d := e.mayWait(now)
	if d <= 0 {
		return nil
	}
	ch := e.startFetch(id, nsHint)
	if ch == nil {
		return nil
	}
	e.waits.Add(1)
	t := time.NewTimer(d)
	select {
	case <-ch:
	case <-t.C:
		e.waitTimeouts.Add(1)
	}
	t.Stop()
	e.spent(now, time.Now().UnixNano()-now)
	if got := e.entry(id); got != nil && !got.placeholder {
		return got
	}
	return nil
}

// mayWait takes one wait from the budget of the second of now and returns
// how long it may last (0: none): MissWait, or what is left of
// MaxWaitPerSec when that is less.
func (e *Enricher) mayWait(now int64) time.Duration {
	sec := now / int64(time.Second)
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	if sec != e.waitSecond {
		e.waitSecond, e.waitUsed, e.waitSpent = sec, 0, 0
	}
	left := time.Duration(int64(e.cfg.MaxWaitPerSec) - e.waitSpent)
	if e.waitUsed >= int64(e.cfg.MaxWaitsPerSec) || left <= 0 {
		return 0
	}
	e.waitUsed++
	return min(e.cfg.MissWait, left)
}

// spent charges a wait of d ns begun at start to its second's budget.
func (e *Enricher) spent(start, d int64) {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	if start/int64(time.Second) == e.waitSecond {
		e.waitSpent += d
	}
}

// placeholder returns (creating if needed) the entry of an id without
// metadata.
func (e *Enricher) placeholder(id string, now int64) *centry {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ce := e.byID[id]; ce != nil {
		if !ce.placeholder {
			return ce
		}
		n := *ce
		n.expires = now + int64(e.cfg.NegativeTTL)
		e.byID[id] = &n
		return &n
	}
	full := string([]byte(id)) // own it: id may point into a borrowed event
	ce := &centry{
		c:           &event.Container{ID: shortID(full), FullID: full},
		placeholder: true,
		expires:     now + int64(e.cfg.NegativeTTL),
	}
	if e.nPlace < maxPlaceholders {
		e.byID[full] = ce
		e.nPlace++
	}
	return ce
}

// store puts a container's metadata in the cache, replacing any placeholder,
// and wakes waiters.
func (e *Enricher) store(c *event.Container, rec record) *centry {
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.byID[c.FullID]
	ce := &centry{c: c, rec: rec}
	if old != nil {
		if old.placeholder {
			e.nPlace--
		} else {
			if c.StartTS == 0 && old.c.StartTS != 0 {
				n := *c
				n.StartTS = old.c.StartTS
				ce.c = &n
			}
		}
	}
	// CRI: pod labels live on the sandbox.
	if rec.sandboxID != "" && rec.sandboxID != c.FullID {
		if sb := e.byID[rec.sandboxID]; sb != nil && !sb.placeholder {
			ce.c = withPodLabels(ce.c, sb.c)
		}
	}
	e.byID[c.FullID] = ce
	if rec.ns != "" {
		e.addNSLocked(rec.ns)
	}
	if ch := e.pending[c.FullID]; ch != nil {
		close(ch)
		delete(e.pending, c.FullID)
	}
	return ce
}

// markDeleted starts the delete grace of a container.
func (e *Enricher) markDeleted(id string, now int64) {
	e.mu.Lock()
	if ce := e.byID[id]; ce != nil && !ce.placeholder && ce.deletedAt == 0 {
		n := *ce
		n.deletedAt = now
		e.byID[id] = &n
	}
	e.mu.Unlock()
}

// sweep removes deleted containers past their grace and expired placeholders.
func (e *Enricher) sweep(now int64) {
	grace := int64(e.cfg.DeleteGrace)
	e.mu.Lock()
	for id, ce := range e.byID {
		switch {
		case ce.placeholder && ce.expires <= now:
			delete(e.byID, id)
			e.nPlace--
			e.expired.Add(1)
		case !ce.placeholder && ce.deletedAt != 0 && ce.deletedAt+grace <= now:
			delete(e.byID, id)
			e.expired.Add(1)
		}
	}
	e.mu.Unlock()
}

// emit sends a container event without blocking.
func (e *Enricher) emit(ev *event.Event) {
	select {
	case e.events <- ev:
		e.started.Add(1)
	default:
		e.dropped.Add(1)
	}
}

// addNS records a containerd namespace.
func (e *Enricher) addNS(ns string) {
	e.mu.Lock()
	e.addNSLocked(ns)
	e.mu.Unlock()
}

func (e *Enricher) addNSLocked(ns string) {
	old := *e.nsKnown.Load()
	if old[ns] {
		return
	}
	m := make(map[string]bool, len(old)+1)
	for k := range old {
		m[k] = true
	}
	m[ns] = true
	e.nsKnown.Store(&m)
}

func (e *Enricher) setReady() { e.readyOnce.Do(func() { close(e.ready) }) }
