package proc

import (
	"runtime"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/event"
)

// BenchmarkHandleOpen: an open event of a known process three levels deep.
func BenchmarkHandleOpen(b *testing.B) {
	tb := newTable(Config{})
	tb.Handle(execEv(base, 1, 0, "/sbin/init", "init"))
	tb.Handle(forkEv(base+1, 1, 10))
	tb.Handle(execEv(base+2, 10, 1, "/bin/bash", "bash"))
	tb.Handle(forkEv(base+3, 10, 11))
	tb.Handle(execEv(base+4, 11, 10, "/usr/bin/cat", "cat", "/etc/shadow"))
	ev := openEv(base+5, 11, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev.Proc.ExePath, ev.Proc.Argv, ev.Proc.Cwd, ev.Proc.CgroupPath = "", nil, "", ""
		tb.Handle(ev)
	}
}

// BenchmarkHandleLifecycle: fork + exec + open + exit of one short process.
func BenchmarkHandleLifecycle(b *testing.B) {
	tb := newTable(Config{ExitGrace: time.Millisecond})
	tb.Handle(execEv(base, 1, 0, "/sbin/init", "init"))
	ts := base
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pid := uint32(1000 + i%100000)
		ts += int64(time.Millisecond)
		tb.Handle(forkEv(ts, 1, pid))
		tb.Handle(execEv(ts+1, pid, 1, "/bin/true", "true"))
		tb.Handle(openEv(ts+2, pid, 1))
		tb.Handle(exitEv(ts+3, pid))
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkEntryMemory reports the heap bytes one table entry costs (a
// process with a typical argv, exe, cwd and cgroup path).
func BenchmarkEntryMemory(b *testing.B) {
	const n = 50000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		tb := newTable(Config{MaxEntries: 2 * n})
		for pid := uint32(2); pid < n+2; pid++ {
			tb.Handle(execEv(base+int64(pid), pid, 1, "/usr/local/bin/worker", "worker", "--config", "/etc/worker/config.yaml", "--verbose"))
		}
		b.StopTimer()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/n, "bytes/entry")
		runtime.KeepAlive(tb)
	}
}

// BenchmarkChurn100k runs 100,000 short-lived processes through the table
// and reports the heap before and after: it must stay flat.
func BenchmarkChurn100k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		tb := newTable(Config{ExitGrace: 100 * time.Millisecond})
		tb.Handle(execEv(base, 1, 0, "/sbin/init", "init"))
		ts := base
		churn := func(k int) {
			for j := 0; j < k; j++ {
				pid := uint32(1000 + j%4000000)
				ts += int64(100 * time.Microsecond)
				tb.Handle(forkEv(ts, 1, pid))
				tb.Handle(execEv(ts+1, pid, 1, "/bin/sh", "sh", "-c", "true"))
				tb.Handle(openEv(ts+2, pid, 1))
				tb.Handle(exitEv(ts+3, pid))
			}
		}
		churn(10000) // warm up: maps and queues at their steady size
		tb.Handle(openEv(ts+int64(time.Second), 1, 0))
		ts += int64(time.Second)
		before := heapInUse()
		churn(100000)
		tb.Handle(openEv(ts+int64(time.Second), 1, 0))
		after := heapInUse()
		if s := tb.Stats(); s.Size != 1 {
			b.Fatalf("size after churn %d", s.Size)
		}
		b.ReportMetric(float64(before)/1024, "heap-before-KiB")
		b.ReportMetric(float64(after)/1024, "heap-after-KiB")
		runtime.KeepAlive(tb)
	}
}

var _ = event.MaxLineage
