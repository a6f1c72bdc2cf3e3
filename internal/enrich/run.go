package enrich

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/api/types/task"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/proc"
)

var errStreamClosed = errors.New("enrich: containerd event stream ended")

// Run connects to containerd (retrying with backoff for as long as it is
// down), lists the containers of every followed namespace, then follows
// containerd's events to keep the cache current. A lost connection is
// reported through Stats and Config.OnStateChange, retried, and the cache
// refilled. Run returns nil when ctx is done or Close is called, and closes
// the Events channel.
func (e *Enricher) Run(ctx context.Context) error {
	select {
	case <-e.done:
		return ErrClosed
	default:
	}
	if !e.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(e.events)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	announced := make(map[string]uint32) // container id -> pid of the announced task
	backoff := e.cfg.RetryMin
	up := false       // the connection was up before this failure
	reported := false // the current outage was reported
	first := true
	for {
		if ctx.Err() != nil {
			return nil
		}
		cli, err := e.connect(ctx)
		if err == nil {
			var wasUp bool
			wasUp, err = e.session(ctx, cli, announced, first)
			cli.Close()
			if wasUp {
				first, up, reported = false, true, false
				backoff = e.cfg.RetryMin
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if up || !reported {
			e.outages.Add(1)
			if e.cfg.OnStateChange != nil {
				e.cfg.OnStateChange(false, err)
			}
			up, reported = false, true
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff *= 2
		if backoff > e.cfg.RetryMax {
			backoff = e.cfg.RetryMax
		}
	}
}

func (e *Enricher) connect(ctx context.Context) (*conn, error) {
	cli, err := dial(ctx, e.cfg.Socket, e.cfg.ConnectTimeout)
	if err != nil {
		return nil, fmt.Errorf("connecting to containerd at %s: %w", e.cfg.Socket, err)
	}
	return cli, nil
}

// session lists and follows containerd over one connection until it fails.
// wasUp reports whether the listing succeeded.
func (e *Enricher) session(ctx context.Context, cli *conn, announced map[string]uint32, first bool) (wasUp bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing so nothing falls between the two.
	evs, errs := cli.subscribe(sctx, `topic~="^/containers/"`, `topic~="^/tasks/"`, `topic~="^/namespaces/"`)
	if err := e.list(sctx, cli, announced, first); err != nil {
		return false, fmt.Errorf("listing containers: %w", err)
	}
	e.cli.Store(cli)
	e.connected.Store(true)
	defer func() {
		e.cli.Store(nil)
		e.connected.Store(false)
	}()
	if !first {
		e.reconnects.Add(1)
	}
	if e.cfg.OnStateChange != nil {
		e.cfg.OnStateChange(true, nil)
	}
	e.setReady()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errStreamClosed
			}
			return true, err
		case env := <-evs: // never closed: the stream's end comes on errs
			e.handle(sctx, cli, env, announced)
		case now := <-tick.C:
			e.sweep(now.UnixNano())
			for id := range announced {
				if _, ok := e.Lookup(id); !ok {
					delete(announced, id)
				}
			}
		}
	}
}

// namespaces returns the namespaces to follow.
func (e *Enricher) namespaces(ctx context.Context, cli *conn) ([]string, error) {
	if e.cfg.Namespaces != nil {
		return e.cfg.Namespaces, nil
	}
	rctx, cancel := context.WithTimeout(ctx, e.cfg.RPCTimeout)
	defer cancel()
	nss, err := cli.namespaceNames(rctx)
	if err != nil {
		return nil, err
	}
	out := nss[:0]
	for _, ns := range nss {
		if validID(ns) {
			out = append(out, ns)
		}
	}
	return out, nil
}

func (e *Enricher) follows(ns string) bool {
	if e.cfg.Namespaces == nil {
		return validID(ns)
	}
	for _, n := range e.cfg.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// list fills the cache from containerd and announces running tasks not yet
// announced; cached containers containerd no longer has start their grace.
func (e *Enricher) list(ctx context.Context, cli *conn, announced map[string]uint32, first bool) error {
	nss, err := e.namespaces(ctx, cli)
	if err != nil {
		return err
	}
	seen := make(map[string]bool)
	listed := make(map[string]bool)
	digests := make(map[string]string)
	for _, ns := range nss {
		nctx, cancel := context.WithTimeout(withNamespace(ctx, ns), e.cfg.RPCTimeout)
		cs, err := cli.listContainers(nctx)
		if err != nil {
			cancel()
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
		e.addNS(ns)
		listed[ns] = true
		// Sandboxes first: their labels are the pod's labels of the others.
		sort.SliceStable(cs, func(i, j int) bool {
			return cs[i].GetLabels()[labelCRIKind] == "sandbox" && cs[j].GetLabels()[labelCRIKind] != "sandbox"
		})
		for _, rc := range cs {
			c, rec, err := buildContainer(ns, rc)
			if err != nil {
				e.invalid.Add(1)
				continue
			}
			e.imageDigest(nctx, cli, c, digests)
			e.store(c, rec)
			seen[c.FullID] = true
		}
		resp, err := cli.tasks.List(nctx, &tasks.ListTasksRequest{})
		cancel()
		if err != nil {
			return fmt.Errorf("namespace %s tasks: %w", ns, err)
		}
		for _, t := range resp.Tasks {
			if t == nil || t.Status != task.Status_RUNNING || !seen[t.ID] {
				continue
			}
			e.taskStarted(ctx, cli, ns, t.ID, t.Pid, time.Now(), announced, first && e.cfg.SkipExisting)
		}
	}
	now := time.Now().UnixNano()
	var gone []string
	e.mu.RLock()
	for id, ce := range e.byID {
		if !ce.placeholder && ce.deletedAt == 0 && listed[ce.rec.ns] && !seen[id] {
			gone = append(gone, id)
		}
	}
	e.mu.RUnlock()
	for _, id := range gone {
		e.markDeleted(id, now)
	}
	return nil
}

// handle applies one containerd event.
func (e *Enricher) handle(ctx context.Context, cli *conn, env *types.Envelope, announced map[string]uint32) {
	e.nevents.Add(1)
	if env == nil || env.Event == nil || !e.follows(env.Namespace) {
		return
	}
	v, err := env.Event.UnmarshalNew()
	if err != nil {
		e.invalid.Add(1)
		return
	}
	ns := env.Namespace
	switch x := v.(type) {
	case *apievents.ContainerCreate:
		e.fetch(ctx, cli, []string{ns}, x.ID)
	case *apievents.ContainerUpdate:
		e.fetch(ctx, cli, []string{ns}, x.ID)
	case *apievents.ContainerDelete:
		// The grace runs on the sensor's clock, the one sweep reads.
		e.markDeleted(x.ID, time.Now().UnixNano())
	case *apievents.TaskStart:
		ts := eventTime(env.Timestamp.AsTime(), env.Timestamp.IsValid(), time.Now())
		e.taskStarted(ctx, cli, ns, x.ContainerID, x.Pid, ts, announced, false)
	case *apievents.NamespaceCreate:
		if validID(x.Name) {
			e.addNS(x.Name)
		}
	}
}

// taskStarted records a container's start time and emits its container
// event once per task.
func (e *Enricher) taskStarted(ctx context.Context, cli *conn, ns, id string, pid uint32, ts time.Time, announced map[string]uint32, quiet bool) {
	if !validID(id) || pid == 0 || announced[id] == pid {
		return
	}
	c, ok := e.Lookup(id)
	if !ok {
		if ce := e.fetch(ctx, cli, []string{ns}, id); ce != nil {
			c = ce.c
		} else {
			c = &event.Container{ID: shortID(id), FullID: id}
		}
	}
	ev := &event.Event{Type: event.TypeContainer, Timestamp: ts.UnixNano()}
	if p, err := proc.ReadProcess(e.cfg.ProcFS, pid); err == nil {
		ev.Proc = *p
	} else {
		ev.Proc = event.Process{PID: pid, TID: pid, StartTime: ts.UnixNano()}
	}
	ev.Proc.ContainerID = c.FullID
	if c.StartTS != ev.Proc.StartTime {
		n := *c
		n.StartTS = ev.Proc.StartTime
		c = &n
		e.mu.Lock()
		if ce := e.byID[id]; ce != nil && !ce.placeholder {
			nce := *ce
			nce.c = c
			e.byID[id] = &nce
		}
		e.mu.Unlock()
	}
	ev.Container = c
	announced[id] = pid
	if !quiet {
		e.emit(ev)
	}
}

// startFetch starts (or joins) a fetch of id for a waiting Enrich; the
// returned channel is closed when it is done.
func (e *Enricher) startFetch(id, nsHint string) <-chan struct{} {
	cli := e.cli.Load()
	if cli == nil {
		return nil
	}
	e.mu.Lock()
	if ch := e.pending[id]; ch != nil {
		e.mu.Unlock()
		return ch
	}
	id = strings.Clone(id) // the event's strings are borrowed
	ch := make(chan struct{})
	e.pending[id] = ch
	var nss []string
	if nsHint != "" && e.follows(nsHint) {
		nss = append(nss, strings.Clone(nsHint))
	}
	for ns := range *e.nsKnown.Load() {
		if ns != nsHint {
			nss = append(nss, ns)
		}
	}
	e.mu.Unlock()
	go func() {
		defer func() {
			e.mu.Lock()
			if e.pending[id] == ch {
				close(ch)
				delete(e.pending, id)
			}
			e.mu.Unlock()
		}()
		e.fetch(e.ctx, cli, nss, id)
	}()
	return ch
}

// fetch gets one container from containerd, trying namespaces in order,
// and stores it.
func (e *Enricher) fetch(ctx context.Context, cli *conn, nss []string, id string) *centry {
	if !validID(id) {
		e.invalid.Add(1)
		return nil
	}
	for _, ns := range nss {
		if !e.follows(ns) {
			continue
		}
		e.fetches.Add(1)
		nctx, cancel := context.WithTimeout(withNamespace(ctx, ns), e.cfg.RPCTimeout)
		rc, err := cli.container(nctx, id)
		if err != nil {
			cancel()
			if !isNotFound(err) {
				e.fetchErrors.Add(1)
			}
			continue
		}
		c, rec, err := buildContainer(ns, rc)
		if err != nil {
			cancel()
			e.invalid.Add(1)
			return nil
		}
		e.imageDigest(nctx, cli, c, nil)
		cancel()
		return e.store(c, rec)
	}
	return nil
}

// imageDigest fills ImageDigest from containerd's image store when the
// reference does not carry one (best effort).
func (e *Enricher) imageDigest(ctx context.Context, cli *conn, c *event.Container, cache map[string]string) {
	if c.ImageDigest != "" || c.Image == "" {
		return
	}
	if d, ok := cache[c.Image]; ok {
		c.ImageDigest = d
		return
	}
	d, err := cli.imageTarget(ctx, c.Image)
	if err != nil || len(d) > 80 || !strings.HasPrefix(d, "sha256:") || !isHex(d[len("sha256:"):]) {
		d = ""
	}
	if cache != nil {
		cache[c.Image] = d
	}
	c.ImageDigest = d
}

// eventTime is the time of a containerd event, reported as a container's
// start: its envelope's stamp when plausible, else now (a stamp missing, at
// the epoch or centuries away is not a start time).
func eventTime(stamp time.Time, valid bool, now time.Time) time.Time {
	if !valid || stamp.Before(now.Add(-24*time.Hour)) || stamp.After(now.Add(time.Hour)) {
		return now
	}
	return stamp
}
