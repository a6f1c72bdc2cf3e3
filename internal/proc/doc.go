// Package proc keeps the process table: one immutable *event.Process
// snapshot per live process (thread group), seeded from /proc at start and
// kept current from fork, exec and exit events.
//
// Contract:
//   - Handle is called from a single goroutine (the pipeline's reader, in
//     event order; the events it filled may then be read on other
//     goroutines). It updates the
//     table from fork/exec/exit events and fills every event: ev.Lineage with
//     the known ancestors (parent first) and, for non-exec events, the
//     ev.Proc fields that only exec carries (ExePath, Argv, Env, Cwd, CgroupPath,
//     ContainerID, exe flags, StartTime). For open/connect events of a known
//     process Handle does not allocate.
//   - Filled fields share the snapshot's strings and Argv slice: they are
//     read-only, like the snapshots themselves (Event.Clone copies them).
//   - Session fields: proc.sid is ev.Proc.SID; proc.sname and friends are
//     Get(ev.Proc.SID) (nil when the leader is gone).
//   - Get may be called from any goroutine. Snapshots are never mutated: an
//     exec or a change of credentials replaces the snapshot, so a reader may
//     keep a *event.Process as long as it likes.
//   - Memory is bounded: an exited process stays resolvable for
//     Config.ExitGrace (late events from other CPUs still find it), then is
//     removed; past Config.MaxEntries the least recently used entry is
//     evicted and counted.
//   - Ancestry follows the PPID the kernel reports, so an orphan's parent is
//     its reaper, as in Falco. A parent whose start time is later than its
//     child's is a reused pid and ends the walk.
package proc
