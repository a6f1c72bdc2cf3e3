package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/testenv"
)

// BenchmarkAlertLatency measures the time from a syscall to the alert's
// arrival at a NATS subscriber, through the real binary with the embedded
// JetStream server. Reported as p50/p99 in microseconds.
func BenchmarkAlertLatency(b *testing.B) {
	testenv.RequireRoot(b)
	dir := b.TempDir()
	target := filepath.Join(dir, "latency.txt")
	os.WriteFile(target, []byte("x"), 0o644)
	rulesFile := filepath.Join(dir, "rules.yaml")
	os.WriteFile(rulesFile, []byte(fmt.Sprintf(e2eRule, target)), 0o644)
	natsPort := freePort(b)
	d := startSensor(b, "run", "--rules", rulesFile, "--data-dir", filepath.Join(dir, "data"),
		"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPort), "--metrics-addr", "",
		"--containerd-socket", "", "--coalesce", "0")
	defer d.stop(b)
	sub := subscribeAlerts(b, natsPort)
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		f, err := os.Open(target)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
		if _, err := sub.NextMsg(10 * time.Second); err != nil {
			b.Fatalf("alert not received: %v\n%s", err, d.log)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkPipelineThroughput drives open+close loops on every CPU for a fixed
// time and reports the events per second the kernel delivered and that the
// whole pipeline (process table, default rules) processed, next to the
// capture-only rate (reading and decoding, nothing else), and the loss.
func BenchmarkPipelineThroughput(b *testing.B) {
	testenv.RequireRoot(b)
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	measure := func(withRules bool) (rate float64, lost uint64) {
		cfg := config.Default()
		cfg.ContainerdSocket = ""
		cfg.Coalesce = 10 * time.Second
		var ruleset *rules.Ruleset
		if withRules {
			ruleset = rs
		}
		var alerts atomic.Uint64
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
		g := newGroup(log)
		eng, err := newEngine(engineConfig{
			cfg: cfg, rules: ruleset, types: event.ClassOpen.Types(),
			publish: func(*alert.Alert) { alerts.Add(1) },
		}, log, g.start)
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- eng.pipe.Run(context.Background()) }()
		<-eng.pipe.Ready()
		path := filepath.Join(b.TempDir(), "f")
		os.WriteFile(path, nil, 0o644)
		start := time.Now()
		// The sensor ignores its own process, so the load runs in children.
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), "TRIPLINE_OPENLOOP="+path+",2s")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Errorf("load generator: %v: %s", err, out)
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		// Let the reader drain what is in the ring, then stop.
		testenv.Eventually(b, 10*time.Second, func() bool {
			st := eng.capt.Stats()
			return st.Decoded+st.Malformed >= st.Delivered
		}, "pipeline did not drain the ring")
		st := eng.capt.Stats()
		eng.stopCapture()
		<-done
		eng.close()
		g.stop()
		return float64(st.Decoded) / elapsed.Seconds(), st.Lost
	}
	for b.Loop() {
		capRate, capLost := measure(false)
		pipeRate, pipeLost := measure(true)
		b.ReportMetric(capRate, "capture-only-ev/s")
		b.ReportMetric(pipeRate, "pipeline-ev/s")
		b.ReportMetric(pipeRate/capRate, "pipeline/capture")
		b.ReportMetric(float64(capLost), "lost-capture-only")
		b.ReportMetric(float64(pipeLost), "lost-pipeline")
	}
}

// openLoop opens and closes a file until the duration in spec ("PATH,DUR") ends.
func openLoop(spec string) {
	path, durText, _ := strings.Cut(spec, ",")
	dur, err := time.ParseDuration(durText)
	if err != nil {
		os.Exit(2)
	}
	for start := time.Now(); time.Since(start) < dur; {
		for range 100 {
			if f, err := os.Open(path); err == nil {
				f.Close()
			}
		}
	}
}
