package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
	"github.com/tripline/tripline/internal/rules"
)

// Errors of New.
var (
	ErrNoSource = errors.New("pipeline: no source")
	ErrWorkers  = errors.New("pipeline: bad worker count")
)

// MaxWorkers bounds Config.Workers.
const MaxWorkers = 256

// Source yields events. Read blocks until it overwrites all of ev (the
// pipeline reuses one Event and does not clear it); it returns io.EOF (or
// any error wrapping it) at the end of a finite source, and another error
// when it is closed or broken. The strings of ev may alias the source's
// buffers until the next Read.
//
// A Source may also implement Pending() bool, reporting whether a Read would
// return without waiting; with several workers the pipeline then hands
// events over in batches while more are queued, and at once when none are.
type Source interface {
	Read(ev *event.Event) error
}

// pender is the optional part of Source.
type pender interface{ Pending() bool }

// Config wires the stages. Only Source is required.
type Config struct {
	Source Source
	// Closed reports whether an error from Source.Read means an orderly stop
	// (e.g. capture.ErrClosed after Close) rather than a failure.
	Closed func(error) bool

	Procs      interface{ Handle(*event.Event) } // process table
	Enricher   interface{ Enrich(*event.Event) } // container metadata
	Containers <-chan *event.Event               // container-start events

	// Users names the user and group of each event, after Enricher (it
	// needs the container id).
	Users interface{ Resolve(*event.Event) }

	// OnEvent sees every event after enrichment (trace, record). The event
	// is borrowed: keep a Clone. With Workers > 1 it is called from every
	// worker at once, in order for the events of one process only.
	OnEvent func(*event.Event)

	Rules   *rules.Ruleset     // nil: no evaluation
	Publish func(*alert.Alert) // receives alerts after coalescing; must not block; concurrent with Workers > 1

	// Workers is how many goroutines evaluate kernel events (OnEvent, rules,
	// alerts; the stages before run on the reading goroutine, in order); the
	// events of one process (thread group) always go to the same one. 0 or
	// 1: the reading goroutine does everything itself.
	Workers int

	Coalesce time.Duration // <0 disables; 0 means alert.DefaultCoalesceWindow
	Hostname string        // "" means alert.Hostname()

	// Drops returns the source's cumulative lost-event count; when it grows
	// the pipeline raises one internal alert per DropInterval with the number
	// of events and drops in that interval.
	Drops        func() uint64
	DropInterval time.Duration // default 1s, like Falco's drop check
}

// Stats are the pipeline's counters.
type Stats struct {
	Events     [event.NumTypes]uint64 // by event type
	Malformed  uint64                 // source read errors that were skipped
	Matches    uint64                 // rule matches
	Alerts     uint64                 // alerts handed to Publish (after coalescing)
	Internal   uint64                 // internal alerts raised
	Coalesced  uint64                 // repeats folded by the coalescer
	RuleCounts map[string]uint64      // matches by rule name
	// PerWorker counts the events handed to each worker (nil with one
	// worker): how evenly the processes spread.
	PerWorker []uint64
}

// Pipeline runs the stages. Create with New, start with Run.
type Pipeline struct {
	cfg   Config
	coal  *alert.Coalescer
	host  string
	rules []*rules.Rule
	// context are the fields every alert carries (see contextFields).
	context []*fields.Field

	events    [event.NumTypes]atomic.Uint64
	malformed atomic.Uint64
	matches   atomic.Uint64
	alerts    atomic.Uint64
	internal  atomic.Uint64
	byRule    map[*rules.Rule]*atomic.Uint64 // fixed after New: read without locks
	prio      map[*rules.Rule]alert.Priority // fixed after New
	perWorker []atomic.Uint64                // len Workers when > 1

	ready chan struct{}
}

// New checks cfg and builds a pipeline.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Source == nil {
		return nil, ErrNoSource
	}
	if cfg.Publish == nil {
		cfg.Publish = func(*alert.Alert) {}
	}
	if cfg.DropInterval <= 0 {
		cfg.DropInterval = time.Second
	}
	if cfg.Workers < 0 || cfg.Workers > MaxWorkers {
		return nil, fmt.Errorf("%w: %d workers (want 0..%d)", ErrWorkers, cfg.Workers, MaxWorkers)
	}
	p := &Pipeline{cfg: cfg, host: cfg.Hostname, ready: make(chan struct{}),
		byRule: map[*rules.Rule]*atomic.Uint64{}, prio: map[*rules.Rule]alert.Priority{}}
	if p.host == "" {
		p.host = alert.Hostname()
	}
	if cfg.Workers > 1 {
		p.perWorker = make([]atomic.Uint64, cfg.Workers)
	}
	if cfg.Rules != nil {
		p.rules = cfg.Rules.Rules()
		for _, r := range p.rules {
			p.byRule[r] = new(atomic.Uint64)
			// The two packages number priorities differently; map by name.
			ap, err := alert.ParsePriority(r.Priority.String())
			if err != nil {
				return nil, fmt.Errorf("pipeline: rule %q: %w", r.Name, err)
			}
			p.prio[r] = ap
		}
	}
	for _, name := range contextFields {
		if f, ok := fields.Lookup(name); ok {
			p.context = append(p.context, f)
		}
	}
	p.coal = alert.NewCoalescer(alert.CoalesceConfig{Window: cfg.Coalesce}, p.emit)
	return p, nil
}

// Ready is closed once Run has started its stages.
func (p *Pipeline) Ready() <-chan struct{} { return p.ready }

func (p *Pipeline) emit(a *alert.Alert) {
	if a.Hostname == "" {
		a.Hostname = p.host
	}
	p.alerts.Add(1)
	p.cfg.Publish(a)
}

// Run processes events until the source ends (nil error for io.EOF or an
// orderly close) or ctx is done, then flushes pending coalesced alerts.
func (p *Pipeline) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if p.cfg.Containers != nil {
		wg.Add(1)
		go func() { defer wg.Done(); p.containers(ctx) }()
	}
	if p.cfg.Drops != nil {
		wg.Add(1)
		last := p.cfg.Drops() // before Ready: drops after Ready are reported
		go func() { defer wg.Done(); p.watchDrops(ctx, last) }()
	}
	coalDone := make(chan struct{})
	go func() { p.coal.Run(ctx); close(coalDone) }()
	close(p.ready)

	err := p.loop(ctx)
	cancel()
	wg.Wait()
	<-coalDone
	p.coal.Close()
	return err
}

// loop reads the events and processes them: on this goroutine with one
// worker, else handing them to the workers (see fanOut).
func (p *Pipeline) loop(ctx context.Context) error {
	if len(p.perWorker) > 0 {
		return p.fanOut(ctx)
	}
	var ev event.Event
	var eval *rules.Evaluator
	if p.cfg.Rules != nil {
		eval = p.cfg.Rules.NewEvaluator()
	}
	matched := make([]*rules.Rule, 0, 16)
	return p.readEach(ctx, &ev, func(ev *event.Event) { matched = p.process(ev, eval, matched[:0]) })
}

// readEach reads events into ev and calls fn on each (ev is reused) until
// ctx is done or the source ends; it returns nil then, or the read error.
func (p *Pipeline) readEach(ctx context.Context, ev *event.Event, fn func(*event.Event)) error {
	for ctx.Err() == nil {
		got, err := p.read(ev)
		if err != nil {
			return stopErr(err)
		}
		if got {
			fn(ev)
		}
	}
	return nil
}

// errEnd ends the loop without an error: the source ended or was closed.
var errEnd = errors.New("pipeline: end of events")

func stopErr(err error) error {
	if err == errEnd {
		return nil
	}
	return err
}

// read reads the next event into ev. It reports false for a record the
// source could not decode (counted, skipped), errEnd at the end of the
// source or an orderly close, and any other error as a failure.
func (p *Pipeline) read(ev *event.Event) (bool, error) {
	err := p.cfg.Source.Read(ev)
	if err == nil {
		return true, nil
	}
	switch {
	case errors.Is(err, io.EOF), p.cfg.Closed != nil && p.cfg.Closed(err):
		return false, errEnd
	case errors.Is(err, errSkip):
		p.malformed.Add(1)
		return false, nil
	}
	var skip interface{ Skippable() bool }
	if errors.As(err, &skip) && skip.Skippable() {
		p.malformed.Add(1)
		return false, nil
	}
	return false, fmt.Errorf("pipeline: reading events: %w", err)
}

// errSkip lets a Source report a record it could not decode; the pipeline
// counts it and goes on.
var errSkip = errors.New("pipeline: skipped record")

// ErrSkip wraps err so the pipeline counts and skips the record.
func ErrSkip(err error) error { return fmt.Errorf("%w: %w", errSkip, err) }

// prepare is the ordered part of an event's path, on the reading goroutine:
// it counts the event, applies it to the process table (which fills its
// lineage and the process fields only exec carries), then names its
// container and its user. Fork, exec and exit thus change the table before
// any later event is read, whichever worker evaluates it; and the
// enricher's and the user resolver's per-container state (which process
// to read a container's files through, when to retry) follows the events
// in the order they happened.
func (p *Pipeline) prepare(ev *event.Event) {
	if ev.Type < event.NumTypes {
		p.events[ev.Type].Add(1)
	}
	if ev.Type == event.TypeContainer {
		return
	}
	if p.cfg.Procs != nil {
		p.cfg.Procs.Handle(ev)
	}
	if p.cfg.Enricher != nil {
		p.cfg.Enricher.Enrich(ev)
	}
	if p.cfg.Users != nil {
		p.cfg.Users.Resolve(ev)
	}
}

// evaluate runs the stages after prepare: OnEvent, the rules and alerts.
// It is the hot path of a worker and does not allocate unless a rule
// matches.
func (p *Pipeline) evaluate(ev *event.Event, eval *rules.Evaluator, matched []*rules.Rule) []*rules.Rule {
	if p.cfg.OnEvent != nil {
		p.cfg.OnEvent(ev)
	}
	if eval == nil {
		return matched
	}
	matched = eval.Match(ev, matched)
	for _, r := range matched {
		p.matches.Add(1)
		if c := p.byRule[r]; c != nil {
			c.Add(1)
		}
		p.coal.Offer(p.alertFor(r, ev))
	}
	return matched
}

// process runs every stage of one event on the calling goroutine.
func (p *Pipeline) process(ev *event.Event, eval *rules.Evaluator, matched []*rules.Rule) []*rules.Rule {
	p.prepare(ev)
	return p.evaluate(ev, eval, matched)
}

func (p *Pipeline) alertFor(r *rules.Rule, ev *event.Event) *alert.Alert {
	out := string(r.AppendOutput(nil, ev))
	of := r.OutputFields(ev)
	p.addContext(of, ev)
	a := alert.New(ev.Time(), r.Name, p.prio[r], out, of, r.Tags)
	a.Hostname = p.host
	return a
}

// contextFields name the container of every alert in its output_fields, as
// Falco's default append_output does: upstream rules no longer put
// %container.* in their outputs, yet an analyst needs to know where the
// event happened. Fields the rule's output already has are kept; a field
// with no value (a host process has no image) is left out.
var contextFields = []string{"container.id", "container.name", "container.image.repository", "k8s.ns.name", "k8s.pod.name"}

func (p *Pipeline) addContext(out map[string]any, ev *event.Event) {
	var c fields.Ctx
	for _, f := range p.context {
		if _, ok := out[f.Name]; ok {
			continue
		}
		if v, ok := f.Extract(&c, ev, &fields.Arg{}); ok {
			out[f.Name] = fields.JSON(f.Type, v)
		}
	}
}

func (p *Pipeline) containers(ctx context.Context) {
	var eval *rules.Evaluator
	if p.cfg.Rules != nil {
		eval = p.cfg.Rules.NewEvaluator()
	}
	var matched []*rules.Rule
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-p.cfg.Containers:
			if !ok {
				return
			}
			matched = p.process(ev, eval, matched[:0])
		}
	}
}

func (p *Pipeline) watchDrops(ctx context.Context, last uint64) {
	t := time.NewTicker(p.cfg.DropInterval)
	defer t.Stop()
	lastEvents := p.total()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, events := p.cfg.Drops(), p.total()
		if now > last {
			p.Internal(alert.EventDrop(events-lastEvents, now-last, map[string]uint64{
				"n_drops_buffer_full": now - last, "n_drops_total": now,
			}))
		}
		last, lastEvents = now, events
	}
}

func (p *Pipeline) total() uint64 {
	var n uint64
	for i := range p.events {
		n += p.events[i].Load()
	}
	return n
}

// Internal publishes a source=internal alert (drops, outages); it bypasses
// coalescing.
func (p *Pipeline) Internal(a *alert.Alert) {
	p.internal.Add(1)
	p.emit(a)
}

// Stats returns a snapshot of the counters.
func (p *Pipeline) Stats() Stats {
	s := Stats{
		Malformed:  p.malformed.Load(),
		Matches:    p.matches.Load(),
		Alerts:     p.alerts.Load(),
		Internal:   p.internal.Load(),
		Coalesced:  p.coal.Stats().Coalesced,
		RuleCounts: make(map[string]uint64, len(p.byRule)),
	}
	for i := range s.Events {
		s.Events[i] = p.events[i].Load()
	}
	for r, c := range p.byRule {
		s.RuleCounts[r.Name] += c.Load()
	}
	if len(p.perWorker) > 0 {
		s.PerWorker = make([]uint64, len(p.perWorker))
		for i := range p.perWorker {
			s.PerWorker[i] = p.perWorker[i].Load()
		}
	}
	return s
}

// RuleCounter returns the live match counter of r (for metrics), or nil.
func (p *Pipeline) RuleCounter(r *rules.Rule) func() uint64 {
	c := p.byRule[r]
	if c == nil {
		return nil
	}
	return c.Load
}

// Workers returns the number of workers that evaluate events (1 when the
// reader evaluates them itself).
func (p *Pipeline) Workers() int { return max(len(p.perWorker), 1) }

// WorkerCounter returns the live count of events handed to worker i (for
// metrics), or nil with one worker.
func (p *Pipeline) WorkerCounter(i int) func() uint64 {
	if i < 0 || i >= len(p.perWorker) {
		return nil
	}
	return p.perWorker[i].Load
}

// EventCounter returns the live counter of events of type t (for metrics).
func (p *Pipeline) EventCounter(t event.Type) func() uint64 { return p.events[t].Load }
