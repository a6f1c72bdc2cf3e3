package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// throughput is one run of open+close load through the sensor's event path.
type throughput struct {
	opens     uint64  // opens the load generators made
	rate      float64 // events processed per second, until the ring was drained
	offered   float64 // opens per second the generators made
	lost      uint64  // records dropped because the ring was full
	perWorker []uint64
}

// measureThroughput runs loaders open+close loops in child processes for
// dur (each at most perLoader opens/s; 0: as fast as they can) through the
// event path with rs (nil: capture only, reading and decoding), and waits
// until every delivered record is processed. With missing, the opens fail
// (ENOTDIR: the path goes through a file): about the cheapest syscall that
// makes an event, so the load generators leave more of the CPUs to the
// sensor.
func measureThroughput(b *testing.B, rs *rules.Ruleset, workers, loaders int, dur time.Duration, perLoader int, missing bool) throughput {
	b.Helper()
	cfg := config.Default()
	cfg.ContainerdSocket = ""
	cfg.Coalesce = 10 * time.Second
	cfg.Workers = workers
	var alerts atomic.Uint64
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	g := newGroup(log)
	defer g.stop()
	eng, err := newEngine(engineConfig{
		cfg: cfg, rules: rs, types: event.ClassOpen.Types(),
		publish: func(*alert.Alert) { alerts.Add(1) },
	}, log, g.start)
	if err != nil {
		b.Fatal(err)
	}
	defer eng.close()
	done := make(chan error, 1)
	go func() { done <- eng.pipe.Run(context.Background()) }()
	<-eng.pipe.Ready()
	path := filepath.Join(b.TempDir(), "f")
	os.WriteFile(path, nil, 0o644)
	if missing {
		path = filepath.Join(path, "missing") // ENOTDIR at once
	}
	start := time.Now()
	// The sensor ignores its own process, so the load runs in children.
	var wg sync.WaitGroup
	var opens atomic.Uint64
	for range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), fmt.Sprintf("TRIPLINE_OPENLOOP=%s,%s,%d", path, dur, perLoader))
			out, err := cmd.Output()
			n, perr := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
			if err != nil || perr != nil {
				b.Errorf("load generator: %v %v: %s", err, perr, out)
			}
			opens.Add(n)
		}()
	}
	wg.Wait()
	loadTime := time.Since(start)
	// Let the reader drain what is in the ring, then stop.
	testenv.Eventually(b, 30*time.Second, func() bool {
		st := eng.capt.Stats()
		return st.Decoded+st.Malformed >= st.Delivered
	}, "pipeline did not drain the ring")
	eng.stopCapture()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start) // the workers are done too
	st := eng.capt.Stats()
	return throughput{opens: opens.Load(), rate: float64(st.Decoded) / elapsed.Seconds(),
		offered: float64(opens.Load()) / loadTime.Seconds(), lost: st.Lost, perWorker: eng.pipe.Stats().PerWorker}
}

// BenchmarkPipelineThroughput drives open+close loops (four processes, so
// that their thread groups spread over the workers) for a fixed time and
// reports the events per second the whole event path processed, until the
// ring was drained: capture only (reading and decoding, nothing else), and
// with the process table and the default rules on 1 and 2 workers, with the
// ratio to capture-only and the records lost. Load generators and sensor
// share the machine's CPUs, so the rates are what the loop achieves under
// the sensor's cost; the "-failed" figures repeat it all with opens that
// fail, which cost the generators much less than an open+close.
func BenchmarkPipelineThroughput(b *testing.B) {
	testenv.RequireRoot(b)
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, missing := range []bool{false, true} {
			sfx := ""
			if missing {
				sfx = "-failed"
			}
			capOnly := measureThroughput(b, nil, 1, 4, 2*time.Second, 0, missing)
			b.ReportMetric(capOnly.rate, "capture-only"+sfx+"-ev/s")
			b.ReportMetric(float64(capOnly.lost), "lost-capture-only"+sfx)
			for _, w := range []int{1, 2} {
				r := measureThroughput(b, rs, w, 4, 2*time.Second, 0, missing)
				b.ReportMetric(r.rate, fmt.Sprintf("w%d%s-ev/s", w, sfx))
				b.ReportMetric(r.rate/capOnly.rate, fmt.Sprintf("w%d%s/capture", w, sfx))
				b.ReportMetric(float64(r.lost), fmt.Sprintf("w%d%s-lost", w, sfx))
				if w > 1 {
					b.Logf("events per worker: %v", r.perWorker)
				}
			}
		}
	}
}

// BenchmarkPipelineFixedRate offers 200k opens/s (four processes of 50k/s
// each) for 3 s to the sensor with the default rules on 2 workers and
// reports the rate the generators achieved, the rate processed and the
// records lost. When the generators fall short of the target the machine
// cannot make that load while capturing; the figures say by how much.
func BenchmarkPipelineFixedRate(b *testing.B) {
	testenv.RequireRoot(b)
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r := measureThroughput(b, rs, 2, 4, 3*time.Second, 50000, false)
		b.ReportMetric(r.offered, "offered-opens/s")
		b.ReportMetric(r.rate, "processed-ev/s")
		b.ReportMetric(float64(r.lost), "lost")
	}
}

// openLoop opens and closes a file for a duration, at most at a rate, and
// prints how many opens it made; spec is "PATH,DUR,PER_SECOND" (0: no limit).
func openLoop(spec string) {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		os.Exit(2)
	}
	dur, err := time.ParseDuration(parts[1])
	rate, err2 := strconv.Atoi(parts[2])
	if err != nil || err2 != nil {
		os.Exit(2)
	}
	var n uint64
	start := time.Now()
	for {
		el := time.Since(start)
		if el >= dur {
			break
		}
		if rate > 0 && n >= uint64(el.Seconds()*float64(rate)) {
			time.Sleep(100 * time.Microsecond) // ahead of the schedule
			continue
		}
		for range 100 { // raw calls: openat and close, nothing else
			if fd, err := syscall.Open(parts[0], syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
				syscall.Close(fd)
			}
		}
		n += 100
	}
	fmt.Println(n)
}
