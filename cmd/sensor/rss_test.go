package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

// memory is one reading of a process's resident memory, split by what
// holds it (KiB).
type memory struct {
	rss  int64 // VmRSS
	ring int64 // BPF maps mapped into the process: the ring buffer, counted twice (its data pages are mapped twice)
	file int64 // file-backed pages: the binary, shared and evictable
	anon int64 // anonymous: the Go heap, stacks, runtime
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

// readMemory reads /proc/PID/smaps; an error means the process is gone.
func readMemory(pid int) (memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return memory{}, err
	}
	defer f.Close()
	var m memory
	var name string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if !strings.HasSuffix(fs[0], ":") { // a mapping's first line
			name = ""
			if len(fs) >= 6 {
				name = fs[5]
			}
			continue
		}
		if fs[0] != "Rss:" || len(fs) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fs[1], 10, 64)
		m.rss += kb
		switch {
		case strings.HasPrefix(name, "anon_inode:bpf"):
			m.ring += kb
		case strings.HasPrefix(name, "/"):
			m.file += kb
		default:
			m.anon += kb
		}
	}
	return m, sc.Err()
}

// BenchmarkSensorRSS measures the resident memory of the real `sensor run`
// with the default rules and the embedded NATS: idle, under a load of
// open+close loops on every CPU (kernel filter off, so every open reaches the
// pipeline), and before and after each of two rounds of 50 containers
// started and removed under a private containerd (flat means the second
// round adds nothing). Reported in MiB; the ring buffer's mapping is
// reported apart since RSS counts its pages twice.
func BenchmarkSensorRSS(b *testing.B) {
	testenv.RequireRoot(b)
	dir := b.TempDir()
	sock := startTestContainerd(b, dir)
	rootfs, cleanup, err := busyboxRootfs()
	testenv.Require(b, err == nil, fmt.Sprintf("busybox-static for a container rootfs: %v", err))
	defer cleanup()
	for b.Loop() {
		metrics := fmt.Sprintf("127.0.0.1:%d", freePort(b))
		d := startSensor(b, "run", "--rules", "../../rules", "--data-dir", filepath.Join(dir, "data"),
			"--nats-listen", fmt.Sprintf("127.0.0.1:%d", freePort(b)), "--metrics-addr", metrics,
			"--containerd-socket", sock, "--kernel-filter=off")
		pid := d.cmd.Process.Pid
		// Drain the alert stream so stdout never blocks the sensor.
		go func() {
			for d.stdout.Scan() {
			}
		}()
		settle := func() memory {
			// Idle: let the startup garbage be collected (the runtime
			// returns memory to the OS within a few GC cycles).
			time.Sleep(3 * time.Second)
			m, err := readMemory(pid)
			if err != nil {
				b.Fatal(err)
			}
			return m
		}
		idle := settle()

		// Load: open+close loops in two children for 5 s, sampling RSS.
		target := filepath.Join(b.TempDir(), "f")
		os.WriteFile(target, nil, 0o644)
		var peak atomic.Int64
		stop := make(chan struct{})
		var sampler sync.WaitGroup
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if m, err := readMemory(pid); err == nil && m.rss > peak.Load() {
					peak.Store(m.rss)
				}
			}
		}()
		delivered0 := metricValue(b, metrics, "tripline_kernel_events_delivered_total")
		start := time.Now()
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cmd := exec.Command(os.Args[0])
				cmd.Env = append(os.Environ(), "TRIPLINE_OPENLOOP="+target+",5s,0")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Errorf("load generator: %v: %s", err, out)
				}
			}()
		}
		wg.Wait()
		rate := (metricValue(b, metrics, "tripline_kernel_events_delivered_total") - delivered0) / time.Since(start).Seconds()
		close(stop)
		sampler.Wait()
		afterLoad := settle()

		churn := func(round int) memory {
			for i := range 50 {
				id := fmt.Sprintf("rss-%d-%d-%d", os.Getpid(), round, i)
				out, err := exec.Command("ctr", "--address", sock, "run", "--rm", "--rootfs", rootfs, id,
					"/bin/sh", "-c", "cat /etc/hostname >/dev/null; true").CombinedOutput()
				if err != nil {
					b.Fatalf("ctr run: %v\n%s", err, out)
				}
			}
			return settle()
		}
		churn1 := churn(1)
		churn2 := churn(2)
		d.stop(b)
		sum := stopSummary(b, d.log.String())

		b.ReportMetric(mib(idle.rss), "idle-MiB")
		b.ReportMetric(mib(idle.rss-idle.ring), "idle-noring-MiB")
		b.ReportMetric(mib(idle.ring), "ring-MiB")
		b.ReportMetric(mib(idle.anon), "idle-anon-MiB")
		b.ReportMetric(rate, "load-ev/s")
		b.ReportMetric(float64(sum["events_lost"]), "lost")
		b.ReportMetric(mib(peak.Load()), "load-peak-MiB")
		b.ReportMetric(mib(afterLoad.rss), "after-load-MiB")
		b.ReportMetric(mib(churn1.rss), "churn50-MiB")
		b.ReportMetric(mib(churn2.rss), "churn100-MiB")
		b.ReportMetric(mib(churn2.anon-churn1.anon), "churn-2nd-round-anon-delta-MiB")
		b.Logf("idle %+v after load %+v after churn %+v / %+v (KiB)", idle, afterLoad, churn1, churn2)
	}
}
