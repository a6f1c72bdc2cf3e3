package capture

import "github.com/tripline/tripline/internal/event"

// syscallTypes maps x86_64 syscall numbers to the event types they produce.
var syscallTypes = []sysnum{
	{2, event.TypeOpen},
	{42, event.TypeConnect},
	{56, event.TypeClone},
	{57, event.TypeFork},
	{58, event.TypeVfork},
	{59, event.TypeExecve},
	{85, event.TypeCreat},
	{257, event.TypeOpenat},
	{322, event.TypeExecveat},
	{435, event.TypeClone3},
	{437, event.TypeOpenat2},
}
