package alert

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"
)

// CoalesceConfig configures a Coalescer.
type CoalesceConfig struct {
	// Window during which repeats of an alert are counted instead of sent.
	// 0 means DefaultCoalesceWindow; negative disables coalescing.
	Window time.Duration
	// MaxKeys caps the distinct (rule, output) pairs tracked; when full, new
	// distinct alerts pass through untracked (never suppressed). Default 10000.
	MaxKeys int
	// Now is the clock; time.Now when nil. Tests inject their own.
	Now func() time.Time
}

// DefaultCoalesceWindow is the default coalescing window.
const DefaultCoalesceWindow = 10 * time.Second

// Output-field keys carried by coalescing follow-ups.
const (
	FieldCoalescedCount  = "tripline.coalesced.count"
	FieldCoalescedWindow = "tripline.coalesced.window"
)

// CoalesceStats are the coalescer counters.
type CoalesceStats struct {
	Offered   uint64 // alerts offered
	Coalesced uint64 // repeats suppressed (counted into a follow-up)
	FollowUps uint64 // follow-up alerts emitted
	Untracked uint64 // distinct alerts passed through because MaxKeys was reached
	Tracked   int    // keys currently tracked
}

type coalesceKey struct{ rule, output string }

type coalesceEntry struct {
	start time.Time // window start
	last  *Alert    // the most recent repeat
	count uint64    // repeats in this window
}

// Coalescer folds identical alerts (same rule and same rendered output)
// within a window: the first goes to emit at once, repeats are counted and
// reported in one follow-up when the window ends, after which a new window
// starts if repeats keep coming. Distinct outputs are never coalesced.
// Safe for concurrent use; emit is never called with the lock held.
type Coalescer struct {
	cfg  CoalesceConfig
	emit func(*Alert)

	mu      sync.Mutex
	entries map[coalesceKey]*coalesceEntry
	stats   CoalesceStats
	closed  bool
}

// NewCoalescer returns a Coalescer that hands alerts to emit.
func NewCoalescer(cfg CoalesceConfig, emit func(*Alert)) *Coalescer {
	if cfg.Window == 0 {
		cfg.Window = DefaultCoalesceWindow
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Coalescer{cfg: cfg, emit: emit, entries: make(map[coalesceKey]*coalesceEntry)}
}

// Offer passes a to emit unless it repeats an alert sent within the window;
// it reports whether a was emitted.
func (c *Coalescer) Offer(a *Alert) bool {
	if c.cfg.Window < 0 {
		c.mu.Lock()
		c.stats.Offered++
		c.mu.Unlock()
		c.emit(a)
		return true
	}
	now := c.cfg.Now()
	k := coalesceKey{a.Rule, a.Output}
	c.mu.Lock()
	c.stats.Offered++
	if e, ok := c.entries[k]; ok && !c.closed {
		if now.Sub(e.start) < c.cfg.Window {
			e.count++
			e.last = a
			c.stats.Coalesced++
			c.mu.Unlock()
			return false
		}
		// Window over but not swept yet: report it, then a opens a new one.
		fu := c.followUpLocked(e, now)
		e.start, e.last, e.count = now, nil, 0
		c.mu.Unlock()
		if fu != nil {
			c.emit(fu)
		}
		c.emit(a)
		return true
	}
	if !c.closed {
		if len(c.entries) >= c.cfg.MaxKeys {
			c.sweepLocked(now, nil)
		}
		if len(c.entries) < c.cfg.MaxKeys {
			c.entries[k] = &coalesceEntry{start: now}
		} else {
			c.stats.Untracked++
		}
	}
	c.mu.Unlock()
	c.emit(a)
	return true
}

// followUpLocked builds the follow-up for e, or nil when nothing repeated.
func (c *Coalescer) followUpLocked(e *coalesceEntry, now time.Time) *Alert {
	if e.count == 0 {
		return nil
	}
	src := e.last
	fu := &Alert{
		Time: src.Time, Rule: src.Rule, Priority: src.Priority, Source: src.Source,
		Output:   src.Output + fmt.Sprintf(" (repeated %d more times in %s)", e.count, c.cfg.Window),
		Hostname: src.Hostname, Tags: src.Tags, UUID: NewUUID(),
	}
	fu.OutputFields = make(map[string]any, len(src.OutputFields)+2)
	maps.Copy(fu.OutputFields, src.OutputFields)
	fu.OutputFields[FieldCoalescedCount] = e.count
	fu.OutputFields[FieldCoalescedWindow] = c.cfg.Window.String()
	c.stats.FollowUps++
	return fu
}

// sweepLocked ends every expired window, collecting follow-ups into out.
func (c *Coalescer) sweepLocked(now time.Time, out []*Alert) []*Alert {
	for k, e := range c.entries {
		if now.Sub(e.start) < c.cfg.Window {
			continue
		}
		if fu := c.followUpLocked(e, now); fu != nil {
			out = append(out, fu)
			// Repeats kept coming: keep tracking in a fresh window.
			e.start, e.last, e.count = now, nil, 0
			continue
		}
		delete(c.entries, k)
	}
	return out
}

// Sweep emits the follow-ups of every window that has ended. Run calls it
// periodically; tests with an injected clock call it directly.
func (c *Coalescer) Sweep() {
	c.mu.Lock()
	out := c.sweepLocked(c.cfg.Now(), nil)
	c.mu.Unlock()
	for _, a := range out {
		c.emit(a)
	}
}

// Run sweeps every quarter window until ctx ends, then flushes like Close.
func (c *Coalescer) Run(ctx context.Context) error {
	if c.cfg.Window < 0 {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(max(c.cfg.Window/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Close()
			return nil
		case <-t.C:
			c.Sweep()
		}
	}
}

// Close emits the follow-ups of all pending windows, whatever their age,
// and stops coalescing (later offers pass straight through). Idempotent.
func (c *Coalescer) Close() error {
	c.mu.Lock()
	var out []*Alert
	now := c.cfg.Now()
	for k, e := range c.entries {
		if fu := c.followUpLocked(e, now); fu != nil {
			out = append(out, fu)
		}
		delete(c.entries, k)
	}
	c.closed = true
	c.mu.Unlock()
	for _, a := range out {
		c.emit(a)
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (c *Coalescer) Stats() CoalesceStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Tracked = len(c.entries)
	return s
}
