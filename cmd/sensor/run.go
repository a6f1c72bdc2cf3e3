package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/broker"
	"github.com/tripline/tripline/internal/capture"
	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
	"github.com/tripline/tripline/internal/metrics"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/pipeline"
	"github.com/tripline/tripline/internal/rules"
)

func newRunCmd() *cobra.Command {
	cfg := config.Default()
	var cfgFile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "run the sensor: capture → enrichment → rules → alerts (NATS, stdout, file)",
		Long: `Runs the sensor daemon. Every setting is a flag; --config FILE may set any of
them by its long name in YAML (flags given on the command line win). Prints a
line containing "ready" on stderr once the probes are attached and the outputs
are open. SIGINT/SIGTERM flush every alert in flight before exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgFile != "" {
				if err := config.ApplyFile(cfgFile, cmd.Flags()); err != nil {
					return err
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runSensor(cmd.Context(), cfg, newLogger(cmd, cfg.LogLevel))
		},
	}
	cmd.Flags().StringVar(&cfgFile, "config", "", "YAML file setting any flag by name (flags win)")
	cfg.RegisterFlags(cmd.Flags())
	return cmd
}

func newLogger(cmd *cobra.Command, level string) *slog.Logger {
	return newLoggerTo(cmd.ErrOrStderr(), level)
}

func newLoggerTo(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// loadRules loads the configured rules and logs the report.
func loadRules(ctx context.Context, cfg config.Config, log *slog.Logger) (*rules.Ruleset, *rules.Report, error) {
	minPrio, _, err := rules.ParsePriority(cfg.Priority)
	if err != nil {
		return nil, nil, fmt.Errorf("--priority: %w", err)
	}
	rs, rep, err := rules.LoadFilesContext(ctx, cfg.Rules, rules.Options{
		MinPriority: minPrio, Enable: cfg.Enable, Disable: cfg.Disable, Captured: deliverable(cfg),
		MaxFileBytes: cfg.RulesMaxBytes,
	})
	if rep != nil {
		for _, w := range rep.Warnings {
			log.Debug("rules", "warning", w.Error())
		}
		for _, s := range rep.Skipped {
			log.Warn("rule skipped", "rule", s.Rule, "reason", s.Reason)
		}
		for _, e := range rep.Errors {
			log.Error("rules", "error", e.Error())
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading rules: %w", err)
	}
	red, err := fields.NewRedactor(cfg.RedactEnv)
	if err != nil {
		return nil, nil, fmt.Errorf("--redact-env: %w", err)
	}
	rs.SetRedaction(red)
	log.Info("rules loaded", "compiled", rep.Compiled, "disabled", rep.Disabled, "skipped", len(rep.Skipped), "warnings", len(rep.Warnings))
	return rs, rep, nil
}

// deliverable lists the event types the sensor delivers: what the kernel
// captures, plus container starts when containerd enrichment is on.
func deliverable(cfg config.Config) []event.Type {
	types := capture.Capturable()
	if cfg.ContainerdSocket != "" {
		types = append(types, event.TypeContainer)
	}
	return types
}

// group runs components and collects their errors.
type group struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    *slog.Logger
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
}

func newGroup(log *slog.Logger) *group {
	ctx, cancel := context.WithCancel(context.Background())
	return &group{ctx: ctx, cancel: cancel, log: log}
}

func (g *group) start(c component) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := c.run(g.ctx); err != nil && !errors.Is(err, context.Canceled) {
			g.mu.Lock()
			g.errs = append(g.errs, fmt.Errorf("%s: %w", c.name, err))
			g.mu.Unlock()
			g.log.Error("component stopped", "component", c.name, "err", err)
		}
	}()
}

func (g *group) stop() error {
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return errors.Join(g.errs...)
}

func runSensor(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	rs, rep, err := loadRules(ctx, cfg, log)
	if err != nil {
		return err
	}
	g := newGroup(log)

	// Outputs first: alerts raised at start (drops, outages) need somewhere to go.
	natsURL := cfg.NATS.URL
	if cfg.UsesNATS() && natsURL == "" {
		b, err := broker.New(broker.Config{Listen: cfg.NATSListen, DataDir: cfg.DataDir})
		if err != nil {
			return err
		}
		if err := b.Start(); err != nil {
			return fmt.Errorf("starting the embedded NATS server: %w", err)
		}
		defer b.Close()
		natsURL = b.ClientURL()
		log.Info("embedded NATS server with JetStream", "url", natsURL, "store", cfg.DataDir)
	}
	sinks, err := output.Parse(cfg.Outputs, os.Stdout, natsConfig(cfg, natsURL))
	if err != nil {
		return err
	}
	for _, s := range sinks {
		if r, ok := s.(output.Runner); ok {
			g.start(component{"output " + s.Name(), r.Run})
		}
	}
	closeSinks := func() {
		for _, s := range sinks {
			if err := s.Close(); err != nil {
				log.Error("closing output", "output", s.Name(), "err", err)
			}
		}
	}
	publish := func(a *alert.Alert) {
		for _, s := range sinks {
			s.Publish(a)
		}
	}

	eng, err := newEngine(engineConfig{cfg: cfg, rules: rs, publish: publish}, log, g.start)
	if err != nil {
		closeSinks()
		g.stop()
		return err
	}
	defer eng.close()
	log.Info("probes attached", "syscall_hook", eng.capt.Hook(), "compat_syscalls", eng.capt.Compat(), "event_types", typeNames(eng.types), "rule_event_types", typeNames(rs.Types()), "ring_bytes", eng.capt.RingSize())
	switch {
	case cfg.CompatSyscalls == "on" && !eng.capt.Compat():
		log.Warn("32-bit syscalls are not traced: this build or kernel has no ia32 syscalls to trace (amd64 with ia32 emulation only)")
	case cfg.CompatSyscalls == "off" && capture.CompatKernel():
		log.Warn("32-bit syscalls are not traced, and this kernel has ia32 emulation: a process can hide its opens, connects and file changes behind int $0x80 (its execs are still seen); --compat-syscalls=on traces them (a program on every syscall), booting with ia32_emulation=false closes the path")
	}
	if why := eng.capt.Fallback(); why != nil {
		log.Warn("syscall exits traced by the raw hook: every syscall of the host runs a program; mount tracefs at /sys/kernel/tracing (the DaemonSets mount the host's) for the per-syscall hook", "reason", why)
	}
	if u := eng.capt.Untraced(); len(u) > 0 {
		log.Info("syscalls this kernel lacks (ENOSYS) are not traced", "event_types", typeNames(u))
	}
	logKernelFilter(log, eng.filter, eng.hostNS != 0)

	var pipeStopped atomic.Bool
	if cfg.MetricsAddr != "" {
		reg := metrics.NewRegistry()
		registerMetrics(reg, rs, eng, sinks)
		ms := metrics.New(metrics.Config{Addr: cfg.MetricsAddr, Registry: reg, Health: func() error {
			if pipeStopped.Load() {
				return errors.New("event pipeline stopped")
			}
			return nil
		}})
		msErr := make(chan error, 1)
		g.start(component{"metrics", func(ctx context.Context) error {
			err := ms.Run(ctx)
			msErr <- err
			return err
		}})
		select { // "ready" promises /metrics and /healthz answer
		case <-ms.Ready():
		case err := <-msErr:
			eng.close()
			closeSinks()
			g.stop()
			return fmt.Errorf("metrics: %w", err)
		}
	}

	pipeDone := make(chan error, 1)
	go func() {
		err := eng.pipe.Run(context.Background())
		pipeStopped.Store(true)
		pipeDone <- err
	}()
	<-eng.pipe.Ready()
	// Starting up is a burst of short-lived allocations (the BPF objects'
	// specs and the kernel's BTF for CO-RE, the rule files' YAML and
	// expression trees): about twice the heap the sensor then keeps. The
	// runtime would keep the heap sized for that peak until allocation
	// catches up; collect it and return it to the OS once, now.
	debug.FreeOSMemory()
	log.Info("ready", "rules", rep.Compiled, "outputs", cfg.Outputs, "workers", cfg.WorkerCount())

	var perr error
	select {
	case <-ctx.Done():
		log.Info("stopping: flushing alerts in flight")
		eng.stopCapture()
		perr = <-pipeDone
	case perr = <-pipeDone:
		eng.stopCapture()
	}
	closeSinks()
	gerr := g.stop()
	logSummary(log, eng.capt.Stats(), eng.pipe.Stats())
	return errors.Join(perr, gerr)
}

// logKernelFilter says per open, connect and file-change type whether the rules' kernel
// filter is on (nil: turned off or not applicable), and which types only
// container rules use (dropped for host processes when hostFilter).
func logKernelFilter(log *slog.Logger, kf *rules.KernelFilter, hostFilter bool) {
	if kf == nil {
		log.Info("kernel filter off")
		return
	}
	on, off := kf.Filtered()
	log.Info("kernel filter", "filtered_types", typeNames(on), "unfiltered_types", typeNames(off),
		"container_only_types", typeNames(kf.Host.Types), "container_filter", hostFilter,
		"failures_dropped_types", typeNames(kf.FailDrop))
}

// logSummary logs the final counters. capt must be read after the capture
// is closed (its last kernel figures) and pipe after the pipeline returned.
func logSummary(log *slog.Logger, capt capture.Stats, pipe pipeline.Stats) {
	var processed uint64
	for _, n := range pipe.Events {
		processed += n
	}
	log.Info("stopped",
		"events_seen", capt.Seen, // passed the in-kernel filters
		"events_lost", capt.Lost, // ring full
		"events_filtered", capt.Filtered, // dropped in the kernel: no rule could match
		"events_processed", processed, // through the pipeline, container starts included
		"events_malformed", capt.Malformed+pipe.Malformed,
		"alerts", pipe.Alerts)
}

func natsConfig(cfg config.Config, url string) output.NATSConfig {
	conn := cfg.NATS
	conn.URL = url
	conn.FromEnv() // secrets from the environment stay out of ps
	return output.NATSConfig{
		NATSConn:      conn,
		Subject:       cfg.NATSSubject,
		Stream:        cfg.NATSStream,
		CreateStream:  true,
		DataDir:       cfg.DataDir,
		SpoolMaxBytes: cfg.SpoolMaxBytes,
	}
}
