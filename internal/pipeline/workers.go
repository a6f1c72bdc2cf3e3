package pipeline

import (
	"context"
	"sync"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
)

// Batching of the hand-off from the reader to the workers. A batch carries
// up to batchSize events whose strings live in the batch's arena; each
// worker may have batchesPerWorker batches queued or in hand, which bounds
// the events in flight (the kernel ring buffers the rest).
const (
	batchSize        = 64
	batchesPerWorker = 4
)

// batch is a run of events of the processes of one worker, in read order.
type batch struct {
	evs   [batchSize]event.Event
	n     int
	arena event.Arena
}

// shard is a worker's queue and the batch the reader is filling for it.
type shard struct {
	in  chan *batch
	cur *batch
}

// fanOut reads events, prepares them in order (see prepare) and hands each
// to the worker of its thread group, so the events of one process are
// evaluated in order by one goroutine. It returns when the source ends, after
// the workers have processed everything handed to them.
func (p *Pipeline) fanOut(ctx context.Context) error {
	n := len(p.perWorker)
	free := make(chan *batch, n*batchesPerWorker)
	for range cap(free) {
		free <- new(batch)
	}
	shards := make([]shard, n)
	var wg sync.WaitGroup
	for i := range shards {
		shards[i].in = make(chan *batch, batchesPerWorker)
		wg.Add(1)
		go func(in <-chan *batch) {
			defer wg.Done()
			p.work(in, free)
		}(shards[i].in)
	}
	flush := func() {
		for i := range shards {
			if s := &shards[i]; s.cur != nil {
				s.in <- s.cur
				s.cur = nil
			}
		}
	}
	defer func() {
		flush()
		for i := range shards {
			close(shards[i].in)
		}
		wg.Wait()
	}()

	pending := func() bool { return false }
	if ps, ok := p.cfg.Source.(pender); ok {
		pending = ps.Pending
	}
	var ev event.Event
	return p.readEach(ctx, &ev, func(ev *event.Event) {
		w := int(ev.Proc.PID % uint32(n))
		s := &shards[w]
		if s.cur == nil {
			select {
			case s.cur = <-free:
			default:
				// Every batch is out: hand over the partial ones so the
				// workers see them, then wait for one to come back. Not
				// on ctx: the event is read, and the workers always
				// return their batches.
				flush()
				s.cur = <-free
			}
		}
		b := s.cur
		slot := &b.evs[b.n]
		b.n++
		ev.CopyInto(slot, &b.arena)
		p.prepare(slot)
		p.perWorker[w].Add(1)
		if b.n == batchSize {
			s.in <- b
			s.cur = nil
		}
		if !pending() {
			flush() // nothing queued: do not hold events back
		}
	})
}

// work evaluates the batches of one shard in order and returns them to free.
func (p *Pipeline) work(in <-chan *batch, free chan<- *batch) {
	var eval *rules.Evaluator
	if p.cfg.Rules != nil {
		eval = p.cfg.Rules.NewEvaluator()
	}
	matched := make([]*rules.Rule, 0, 16)
	for b := range in {
		for i := range b.n {
			matched = p.evaluate(&b.evs[i], eval, matched[:0])
		}
		b.n = 0
		b.arena.Reset()
		free <- b // free holds every batch: never blocks
	}
}
