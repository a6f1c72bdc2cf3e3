//go:build !linux || !(amd64 || arm64)

package capture

import (
	"context"
	"time"

	"github.com/tripline/tripline/internal/event"
)

// Capture is unavailable on this platform.
type Capture struct{}

// New returns ErrUnsupported on this platform.
func New(cfg Config) (*Capture, error) { return nil, ErrUnsupported }

// Read returns ErrUnsupported.
func (c *Capture) Read(ev *event.Event) error { return ErrUnsupported }

// Run returns ErrUnsupported.
func (c *Capture) Run(ctx context.Context, fn func(*event.Event)) error { return ErrUnsupported }

// SetTypes returns ErrUnsupported.
func (c *Capture) SetTypes(types []event.Type) error { return ErrUnsupported }

// Stats returns zero counters.
func (c *Capture) Stats() Stats { return Stats{} }

// Pending reports false.
func (c *Capture) Pending() bool { return false }

// Stop does nothing.
func (c *Capture) Stop(timeout time.Duration) {}

// Close does nothing.
func (c *Capture) Close() error { return nil }

// SyscallHooked returns false: nothing is hooked on this platform.
func SyscallHooked(event.Type) bool { return false }

// Capturable returns nil: nothing can be captured on this platform.
func Capturable() []event.Type { return nil }

// HostMntNS returns ErrUnsupported on this platform.
func HostMntNS() (uint64, error) { return 0, ErrUnsupported }

// Compat reports whether 32-bit syscalls are traced: never here.
func (c *Capture) Compat() bool { return false }

// Hook returns "": nothing is hooked on this platform.
func (c *Capture) Hook() Hook { return "" }

// RingSize returns 0.
func (c *Capture) RingSize() int { return 0 }

// Fallback returns nil.
func (c *Capture) Fallback() error { return nil }

// Untraced returns nil.
func (c *Capture) Untraced() []event.Type { return nil }

// CompatKernel returns false: nothing is traced on this platform.
func CompatKernel() bool { return false }
