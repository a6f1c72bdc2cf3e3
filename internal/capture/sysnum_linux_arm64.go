package capture

import "github.com/tripline/tripline/internal/event"

// syscallTypes maps arm64 syscall numbers to the event types they produce.
// arm64 has no open, creat, fork or vfork.
var syscallTypes = []sysnum{
	{56, event.TypeOpenat},
	{203, event.TypeConnect},
	{220, event.TypeClone},
	{221, event.TypeExecve},
	{281, event.TypeExecveat},
	{435, event.TypeClone3},
	{437, event.TypeOpenat2},
}
