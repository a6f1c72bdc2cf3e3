package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/metrics"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/rules"
)

// registerMetrics exposes every stage's Stats() as Prometheus metrics read at
// scrape time, so nothing on the event path touches a metric.
func registerMetrics(reg prometheus.Registerer, rs *rules.Ruleset, e *engine, sinks []output.Sink) {
	p, c, procs, enr := e.pipe, e.capt, e.procs, e.enr
	f := func(v uint64) float64 { return float64(v) }
	for t := event.TypeUnknown + 1; t < event.NumTypes; t++ {
		n := p.EventCounter(t)
		metrics.CounterFunc(reg, "events_total", "Events processed by type.", prometheus.Labels{"type": t.String()}, func() float64 { return f(n()) })
	}
	for i := range p.Workers() {
		if n := p.WorkerCounter(i); n != nil {
			metrics.CounterFunc(reg, "pipeline_worker_events_total", "Events handed to each pipeline worker (their processes' share).", prometheus.Labels{"worker": strconv.Itoa(i)}, func() float64 { return f(n()) })
		}
	}
	metrics.GaugeFunc(reg, "kernel_syscall_hook", "1, labelled with how syscall exits are traced: syscall (only the captured syscalls run a program) or raw (every syscall does).", prometheus.Labels{"hook": string(c.Hook())}, func() float64 { return 1 })
	compat := 0.0
	if c.Compat() {
		compat = 1
	}
	metrics.GaugeFunc(reg, "kernel_compat_syscalls", "1 when 32-bit (ia32) syscalls are traced (--compat-syscalls=on, on a kernel that runs them), else 0.", nil, func() float64 { return compat })
	metrics.CounterFunc(reg, "kernel_events_seen_total", "Events seen by the BPF programs.", nil, func() float64 { return f(c.Stats().Seen) })
	metrics.CounterFunc(reg, "kernel_events_delivered_total", "Events written to the ring buffer.", nil, func() float64 { return f(c.Stats().Delivered) })
	metrics.CounterFunc(reg, "kernel_events_lost_total", "Events lost because the ring buffer was full.", nil, func() float64 { return f(c.Stats().Lost) })
	metrics.CounterFunc(reg, "kernel_events_filtered_total", "Events dropped in the kernel because no rule could match them.", nil, func() float64 { return f(c.Stats().Filtered) })
	metrics.CounterFunc(reg, "kernel_events_truncated_total", "Events with a truncated path, argv or environment.", nil, func() float64 { return f(c.Stats().Truncated) })
	metrics.CounterFunc(reg, "events_malformed_total", "Kernel records that failed validation and were skipped.", nil, func() float64 { return f(c.Stats().Malformed) })
	metrics.CounterFunc(reg, "events_no_identity_total", "Kernel records skipped because the task identity they named was no longer cached (part of events_malformed_total).", nil, func() float64 { return f(c.Stats().NoIdentity) })
	for _, r := range rs.Rules() {
		n := p.RuleCounter(r)
		if n == nil || !r.Enabled {
			continue
		}
		metrics.CounterFunc(reg, "rule_matches_total", "Rule matches by rule.", prometheus.Labels{"rule": r.Name, "priority": r.Priority.String()}, func() float64 { return f(n()) })
	}
	metrics.CounterFunc(reg, "alerts_total", "Alerts handed to the outputs after coalescing.", nil, func() float64 { return f(p.Stats().Alerts) })
	metrics.CounterFunc(reg, "alerts_coalesced_total", "Repeated alerts folded into follow-ups.", nil, func() float64 { return f(p.Stats().Coalesced) })
	metrics.CounterFunc(reg, "alerts_internal_total", "Internal alerts (drops, outages, spool pressure).", nil, func() float64 { return f(p.Stats().Internal) })
	metrics.GaugeFunc(reg, "process_table_size", "Processes tracked by the process table.", nil, func() float64 { return float64(procs.Stats().Size) })
	metrics.CounterFunc(reg, "process_table_evicted_total", "Process entries evicted by the size cap.", nil, func() float64 { return f(procs.Stats().Evicted) })
	if u := e.usr; u != nil {
		metrics.GaugeFunc(reg, "users_containers", "Containers whose passwd/group files are cached.", nil, func() float64 { return float64(u.Stats().Roots) })
		metrics.CounterFunc(reg, "users_reads_total", "passwd/group file pairs read (first reads and re-reads of changed files).", nil, func() float64 { return f(u.Stats().Loads) })
		metrics.CounterFunc(reg, "users_read_errors_total", "passwd/group reads that failed (names unknown for that root).", nil, func() float64 { return f(u.Stats().LoadErrors) })
	}
	if enr != nil {
		metrics.CounterFunc(reg, "enrich_hits_total", "Container lookups answered from the cache.", nil, func() float64 { return f(enr.Stats().Hits) })
		metrics.CounterFunc(reg, "enrich_misses_total", "Container lookups that missed.", nil, func() float64 { return f(enr.Stats().Misses) })
		metrics.GaugeFunc(reg, "containerd_connected", "1 while connected to containerd.", nil, func() float64 { return b2f(enr.Stats().Connected) })
	}
	for _, s := range sinks {
		if n, ok := s.(*output.NATS); ok {
			metrics.CounterFunc(reg, "alerts_published_total", "Alerts acknowledged by JetStream.", nil, func() float64 { return f(n.Stats().Published) })
			metrics.CounterFunc(reg, "alerts_spooled_total", "Alerts written to the on-disk spool.", nil, func() float64 { return f(n.Stats().Spooled) })
			metrics.CounterFunc(reg, "alerts_dropped_total", "Alerts dropped because the spool was full.", nil, func() float64 { return f(n.Stats().Dropped) })
			metrics.GaugeFunc(reg, "spool_bytes", "Bytes in the alert spool.", nil, func() float64 { return float64(n.Stats().SpoolBytes) })
			metrics.GaugeFunc(reg, "nats_connected", "1 while connected to NATS.", nil, func() float64 { return b2f(n.Stats().Connected) })
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
