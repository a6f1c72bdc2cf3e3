package rules

import (
	"runtime"
	"syscall"
	"testing"
)

// threadCPU returns the CPU time consumed by the calling OS thread. The
// machine running benchmarks is shared, so wall-clock ns/op overstates the
// cost; cpu-ns/op (reported next to it) does not.
func threadCPU() int64 {
	var ru syscall.Rusage
	const rusageThread = 1
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func reportCPU(b *testing.B, run func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	start := threadCPU()
	run()
	b.StopTimer()
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
}
