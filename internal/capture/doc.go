// Package capture is Tripline's kernel capture stage: CO-RE eBPF programs on
// tracepoints (the syscalls/sys_exit_<name> tracepoint of each captured
// syscall, or the raw tp_btf sys_exit without tracefs: Config.Hook; with
// Config.Compat, another raw sys_exit program for 32-bit syscalls;
// sched_process_exec/fork/exit) feed one ring buffer; the package decodes
// its records into event.Event.
//
// Contract:
//   - New loads and attaches everything or returns an error naming what is
//     missing (kernel BTF, privileges, a hook). Close is idempotent. Stop
//     detaches the programs and lets Read return the records still queued
//     (bounded by a timeout) before ErrClosed; Pending tells the reader
//     whether a Read would return without waiting.
//   - Read and Run hand out borrowed events: strings and slices alias buffers
//     reused by the next Read (see package event). Decoding does not allocate.
//   - Every event carries the task identity of the thread that caused it
//     (pids, vpid/vtid, sid, credentials, loginuid, comm, capabilities,
//     pid/mnt namespace inodes, cgroup id, start time, tty) and CgroupPath
//     on exec and fork events. Exec events add ExePath (the file the kernel
//     executed: the interpreter for a script), Argv (bounded by
//     Config.ArgvMax), Cwd and the exe flags (memfd; overlayfs upper or
//     lower layer; writable: what the task's fs credentials may write by
//     mode bits and CAP_DAC_OVERRIDE on a read-write mount, without ACLs,
//     LSMs or supplementary groups); the filename
//     passed to exec is in Open.RawPath (for a failed exec, Proc is the
//     unchanged caller and Open.RawPath the attempted file). Fork events
//     describe the parent in Proc and the child in Fork. Exec events also
//     carry Env, the environment read from mm->env_start..env_end of the new
//     image (at sched_process_exec, once the new mm is installed: what the
//     program really got), bounded by Config.EnvMax, flagged
//     FlagEnvTruncated when cut or when the record had no room left; a
//     failed exec carries the caller's. Open.Path is the
//     kernel-resolved absolute path of the new fd; for a failed open it is
//     the raw path joined lexically to the cwd or dirfd directory.
//   - Syscall arguments are read at sys_exit from the saved registers (one
//     program per syscall, no per-thread state); the user memory they point
//     to (raw path, open_how, sockaddr) is read then too. What a rule should
//     trust comes from kernel objects: the opened file's path, the socket's
//     addresses, and for a connected unix socket the address its peer is
//     bound to.
//   - The syscalls after TypeProcexit (file system changes, socket calls,
//     dup, ptrace, modules, setuid family, mount, memfd_create, bpf,
//     unshare, setns) share one generic record: Sys.Args are the argument
//     registers; up to two user paths arrive raw with the kernel-resolved
//     directory each is relative to (the cwd or the dirfd), and Sys.Path /
//     Sys.Path2 are those joined lexically; the fd a call returned or used
//     is resolved in the kernel to its file (Sys.FDPath) or its socket
//     (Event.Connect). fcntl is reported only for F_DUPFD(_CLOEXEC), sendto
//     and sendmsg only with a destination address: both are decided in the
//     kernel, before a record is built.
//   - A successful execveat is typed execveat when the kernel resolved the
//     file through a dirfd (fexecve, memfd); execveat(AT_FDCWD or an
//     absolute path) cannot be told from execve there and reads as execve.
//   - Only the cheap identity is captured for open/connect/exit: ExePath,
//     Argv, Env and Cwd of those come from the process table.
//   - CgroupPath is the cgroup v2 path, or, when that is "/" (cgroup v1
//     hybrid hosts), the memory controller's v1 path: "/kubepods/...",
//     "/system.slice/docker-<id>.scope", "/<ns>/<64 hex>". Host processes
//     may sit in non-container groups (e.g. "/process_api/<32 hex>").
//   - Paths come from bounded dentry walks (128 components, 4095 bytes) up to
//     the root of the task's mount namespace; FlagPathTruncated marks a cut.
//   - Config.Filter drops, before the record is built, the opens that pass
//     none of its terms (access mode, result, and for a successful open the
//     resolved path's prefix, a '/'-led text in it or its last component:
//     the bytes Open.Path gets). Its Sock part drops, before the task
//     identity is read, the connects that pass none of their terms
//     (family, outcome, caller outside the host's mount namespace, remote
//     port and address: the values event.Connect gets), its File part the
//     file changes that pass none of theirs (caller outside the host's
//     mount namespace, bits of a flags register, the last component of a
//     path argument as passed, read again from user memory before the
//     record is built; an empty, "." or ".." one passes), and HostDrop the
//     events of its types from processes in the mount namespace HostMntNS,
//     before the arguments are read (never exec, fork or exit). They are
//     counted in Filtered, not Seen.
//   - The task identity travels once: the kernel keeps, per task (task
//     storage), the identity it last sent and a generation, globally unique,
//     and sends the identity only in a task's first record and the first
//     after any of it changed (or after userspace asked for a resend);
//     other records name it by (tid, generation). A generation is committed
//     only once its record is in the ring, so a lost record is followed by
//     another full one. The decoder caches one identity per thread (bounded,
//     dropped at the thread's exit record) and fills every event as if the
//     record carried it. A record naming an identity the decoder does not
//     hold (evicted past the bound) is counted in NoIdentity and Malformed
//     and skipped, never given another identity; the reader then bumps
//     config.epoch, which makes every task resend its identity.
//   - Kernel-side counters (Stats) satisfy Seen == Delivered + Lost.
//     Records that fail validation in userspace are counted as Malformed
//     and skipped, never returned.
package capture
