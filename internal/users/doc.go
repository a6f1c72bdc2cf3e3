// Package users resolves user and group names as Falco does: from the host's
// /etc/passwd and /etc/group for host processes, and from the container's own
// files (reached through /proc/PID/root) for processes in a container.
//
// Contract:
//   - Resolve is called from the pipeline's goroutine after the container id
//     is known (enrichment). It sets ev.Proc.User (EUID), Group (EGID) and
//     LoginUser (LoginUID) to shared, immutable entries, nil when the id is not
//     in the files. With the root cached it takes two atomic loads and three
//     map lookups and does not allocate.
//   - The host's files are read by New. A container's files are read by Run's
//     goroutine when its first event is seen; that event waits at most
//     Config.MissWait, then goes on without names. The event path never reads
//     a file itself.
//   - Run checks every cached pair once per Config.Refresh (size, inode,
//     mtime, ctime by fstat) and re-reads a changed one; a container unused
//     for 60 cycles is forgotten. At most Config.MaxRoots containers are
//     cached; past that their names stay unknown (Stats.Overflow).
//   - Files are untrusted input: opened with openat2(RESOLVE_IN_ROOT) so a
//     container's symlinks resolve inside the container, O_NONBLOCK, regular
//     files only, at most MaxFileSize bytes and MaxEntries entries; lines that
//     are malformed or whose names hold spaces or control characters are
//     skipped. The first entry of an id wins, as getpwuid(3) returns it.
package users
