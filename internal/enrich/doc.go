// Package enrich gives events their container: it derives the container id
// from a process's cgroup path (ContainerID, pure) and keeps a cache of
// containerd's containers (all namespaces, or those configured) with the
// metadata rules use as container.* and k8s.* fields.
//
// Contract:
//   - Run connects to containerd, lists every container, then follows
//     containerd's events (container create/update/delete, task start) to keep
//     the cache current. containerd being down, at start or later, is not an
//     error: Run retries with backoff, reports the state through Stats and
//     Config.OnStateChange, and refills the cache when containerd is back.
//   - Enrich is called from the pipeline's goroutine. With a warm cache it
//     takes a read lock and a map lookup and does not allocate. A container
//     not in the cache makes the event wait at most Config.MissWait (≤100ms)
//     while its record is fetched from containerd; then the event goes on
//     with what is known (the bare id). The waits of a second are bounded
//     in number (MaxWaitsPerSec) and in time (MaxWaitPerSec, 500ms), so a
//     slow containerd holds the pipeline's reader half the time at most. Deleted containers stay cached for
//     Config.DeleteGrace so events of short-lived containers still resolve.
//   - Host processes (every cgroup path without a container id, such as
//     /process_api/<32 hex> or /user.slice/...) get ContainerID "" and a nil
//     Container; the rules' container.id is then "host" (event.HostID).
//   - Containers are identified by a 64-hex id in the cgroup path (CRI,
//     Docker, ctr; cgroup v1 and v2; cgroupfs and systemd drivers), or, for
//     /<namespace>/<id> paths of plain containerd, by an id containerd knows.
//   - Everything read from containerd is validated and bounded (ids, label
//     counts and sizes, mounts, capabilities, spec size); control characters
//     are kept as data, outputs escape them.
//   - Events delivers one TypeContainer event per container task start (and,
//     unless Config.SkipExisting, per task already running at the first
//     connection); the event and its Container belong to the receiver, the
//     Container being an immutable snapshot shared with the cache.
package enrich
