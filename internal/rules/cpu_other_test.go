//go:build !linux

package rules

import "testing"

func reportCPU(b *testing.B, run func()) {
	b.ResetTimer()
	run()
}
