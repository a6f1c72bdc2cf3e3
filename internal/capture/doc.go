// Package capture is Tripline's kernel capture stage: CO-RE eBPF programs on
// tracepoints (tp_btf sys_enter/sys_exit, sched_process_exec/fork/exit) feed
// one ring buffer; the package decodes its records into event.Event.
//
// Contract:
//   - New loads and attaches everything or returns an error naming what is
//     missing (kernel BTF, privileges, a hook). Close is idempotent.
//   - Read and Run hand out borrowed events: strings and slices alias buffers
//     reused by the next Read (see package event). Decoding does not allocate.
//   - Every event carries the task identity of the thread that caused it
//     (pids, vpid/vtid, sid, credentials, loginuid, comm, capabilities,
//     pid/mnt namespace inodes, cgroup id, start time, tty) and CgroupPath
//     on exec and fork events. Exec events add ExePath (the file the kernel
//     executed: the interpreter for a script), Argv (bounded by
//     Config.ArgvMax), Cwd and the memfd/overlay-upper flags; the filename
//     passed to exec is in Open.RawPath (for a failed exec, Proc is the
//     unchanged caller and Open.RawPath the attempted file). Fork events
//     describe the parent in Proc and the child in Fork. Open.Path is the
//     kernel-resolved absolute path of the new fd; for a failed open it is
//     the raw path joined lexically to the cwd or dirfd directory.
//   - Only the cheap identity is captured for open/connect/exit: ExePath,
//     Argv and Cwd of those come from the process table.
//   - CgroupPath is the cgroup v2 path, or, when that is "/" (cgroup v1
//     hybrid hosts), the memory controller's v1 path: "/kubepods/...",
//     "/system.slice/docker-<id>.scope", "/<ns>/<64 hex>". Host processes
//     may sit in non-container groups (e.g. "/process_api/<32 hex>").
//   - Paths come from bounded dentry walks (128 components, 4095 bytes) up to
//     the root of the task's mount namespace; FlagPathTruncated marks a cut.
//   - Kernel-side counters (Stats) satisfy Seen == Delivered + Lost.
//     Records that fail validation in userspace are counted as Malformed
//     and skipped, never returned.
package capture
