package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/capture"
	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/enrich"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/pipeline"
	"github.com/tripline/tripline/internal/proc"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/users"
)

// component is a stage with a lifetime: it runs until ctx ends.
type component struct {
	name string
	run  func(context.Context) error
}

// engine is the event path: capture → process table → enrichment → rules.
type engine struct {
	capt   *capture.Capture
	types  []event.Type        // what the kernel sends
	filter *rules.KernelFilter // what the kernel drops; nil: nothing
	hostNS uint64              // host mount namespace for the container-only filter; 0: off
	procs  *proc.Table
	enr    *enrich.Enricher // nil without containerd
	usr    *users.Resolver
	pipe   *pipeline.Pipeline
}

// engineConfig says how to build the event path.
type engineConfig struct {
	cfg     config.Config
	rules   *rules.Ruleset     // nil: no evaluation
	publish func(*alert.Alert) // alerts after coalescing
	onEvent func(*event.Event) // optional, after enrichment
	types   []event.Type       // nil: what the rules need
	pid     uint32
	comm    string
}

// newEngine builds and attaches the event path; start runs its background
// parts. The caller runs e.pipe.Run and calls e.close.
func newEngine(ec engineConfig, log *slog.Logger, start func(component)) (*engine, error) {
	cfg := ec.cfg
	e := &engine{}
	// The enricher may report an outage from its goroutine before the
	// pipeline exists; reports before that are only logged.
	var internalAlert atomic.Pointer[func(*alert.Alert)]
	procCfg := proc.Config{MaxEntries: cfg.ProcMax}
	var containers <-chan *event.Event
	if cfg.ContainerdSocket != "" {
		enr, err := enrich.New(enrich.Config{
			Socket: cfg.ContainerdSocket,
			OnStateChange: func(connected bool, err error) {
				if connected {
					log.Info("containerd connected", "socket", cfg.ContainerdSocket)
					return
				}
				log.Warn("containerd unavailable; container metadata missing until it is back",
					"socket", cfg.ContainerdSocket, "err", err)
				if f := internalAlert.Load(); f != nil {
					(*f)(alert.EnrichmentOutage("containerd at "+cfg.ContainerdSocket, err))
				}
			},
		})
		if err != nil {
			return nil, err
		}
		e.enr = enr
		containers = enr.Events()
		procCfg.ContainerID = enr.ContainerIDOf
		start(component{"enrich", enr.Run})
	}
	e.procs = proc.New(procCfg)
	if err := e.procs.Seed(); err != nil {
		log.Warn("process table seed incomplete", "err", err)
	}

	usr, err := users.New(users.Config{})
	if err != nil {
		log.Warn("host user names unknown", "err", err)
	}
	e.usr = usr
	start(component{"users", func(ctx context.Context) error { usr.Run(ctx); return nil }})

	e.types = captureTypes(ec)
	var filter *capture.Filter
	if e.filter = ruleFilter(ec); e.filter != nil {
		filter = capture.RulesFilter(e.filter)
		if cfg.KernelFilterHost == "on" {
			ns, err := capture.HostMntNS()
			if err != nil {
				log.Warn("container-only kernel filter off", "err", err)
			}
			filter.HostMntNS, e.hostNS = ns, ns
		}
	}
	capt, err := capture.New(capture.Config{Types: e.types, ArgvMax: cfg.ArgvMax, EnvMax: captureEnvMax(cfg.EnvMax), RingSize: cfg.RingSize, PID: ec.pid, Comm: ec.comm, Filter: filter, Hook: captureHook(cfg.SyscallHook), Compat: cfg.CompatSyscalls == "on"})
	if err != nil {
		e.close()
		return nil, err
	}
	e.capt = capt

	pcfg := pipeline.Config{
		Source:   capt,
		Closed:   func(err error) bool { return errors.Is(err, capture.ErrClosed) },
		Procs:    e.procs,
		Users:    usr,
		OnEvent:  ec.onEvent,
		Rules:    ec.rules,
		Publish:  ec.publish,
		Coalesce: cfg.Coalesce,
		Hostname: cfg.Hostname,
		Drops:    func() uint64 { return capt.Stats().Lost },
		Workers:  cfg.WorkerCount(),
	}
	if cfg.Coalesce == 0 {
		pcfg.Coalesce = -1
	}
	if e.enr != nil {
		pcfg.Enricher = e.enr
		pcfg.Containers = containers
	}
	if e.pipe, err = pipeline.New(pcfg); err != nil {
		e.close()
		return nil, err
	}
	f := e.pipe.Internal
	internalAlert.Store(&f)
	return e, nil
}

// captureTypes is what the kernel sends: the types asked for (or those the
// rules can match) plus the process lifecycle, which the process table and
// container identity need whatever the rules say. Rules are evaluated by
// type, so lifecycle events no rule uses only update the tables.
func captureTypes(ec engineConfig) []event.Type {
	want := ec.types
	if want == nil && ec.rules != nil {
		want = ec.rules.Types()
	}
	var out []event.Type
	for _, t := range capture.Capturable() { // container events come from the enricher
		if slices.Contains(want, t) || slices.Contains(capture.Lifecycle(), t) {
			out = append(out, t)
		}
	}
	return out
}

// ruleFilter is the kernel filter of the rules, when the sensor evaluates
// rules on what they ask for and --kernel-filter is not off (nil otherwise).
func ruleFilter(ec engineConfig) *rules.KernelFilter {
	if ec.rules == nil || ec.types != nil || ec.cfg.KernelFilter == "off" {
		return nil
	}
	return ec.rules.KernelFilter()
}

// drainTimeout bounds how long an orderly stop keeps reading the records
// still queued in the ring buffer.
const drainTimeout = 2 * time.Second

// stopCapture ends the event path: the kernel stops sending, the records
// still queued in the ring are read (for at most drainTimeout), and the
// pipeline's Run returns once every event read is processed.
func (e *engine) stopCapture() {
	if e.capt != nil {
		e.capt.Stop(drainTimeout)
	}
}

func (e *engine) close() {
	e.stopCapture()
	if e.enr != nil {
		e.enr.Close()
	}
}

func typeNames(ts []event.Type) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

// captureHook maps the config's syscall-hook to capture.Config's Hook.
func captureHook(s string) capture.Hook {
	if s == "auto" {
		return capture.HookAuto
	}
	return capture.Hook(s)
}

// captureEnvMax maps the config's env-max (0: none) to capture.Config's
// (0: the default, negative: none).
func captureEnvMax(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
