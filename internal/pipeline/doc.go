// Package pipeline runs the sensor's stages in order for every event:
//
//	Source.Read → Procs.Handle (ancestry, history) → Enricher.Enrich (container)
//	  → Users.Resolve (user/group names) → OnEvent (trace/record) → rules.Evaluator.Match → alerts → Coalescer → Publish
//
// Concurrency (Config.Workers):
//   - One goroutine reads. It counts each event and runs Procs.Handle,
//     Enricher.Enrich and Users.Resolve on it, in source order: fork, exec
//     and exit change the process table before any later event is read, so
//     a child's events see its parent and its new image even when another
//     worker evaluates them; and the enricher's and resolver's
//     per-container state (which process leads to a container's files,
//     when a failed read is retried) follows the events in the order they
//     happened. These stages are cheap once a container is known; the
//     first events of a new container may wait for its metadata, briefly,
//     as they did with one goroutine.
//   - With one worker the reader runs the remaining stages itself on the
//     one reused event: nothing is copied.
//   - With N > 1 workers the reader copies each event into a slot of a
//     preallocated batch, its strings into the batch's event.Arena (no
//     allocation per event once the arenas have grown), and queues it for
//     worker tgid % N. Batches are handed over when full, or at once when
//     the source has nothing more queued (a Source may implement Pending;
//     without it every event goes at once). Each worker has a bounded
//     number of batches; when all are out, the reader waits and the
//     source's own buffer (the kernel ring) takes the backlog.
//   - A worker runs OnEvent, its own rules.Evaluator and the alerts for its
//     batches in order: the events of one thread group, and their alerts,
//     stay in order. OnEvent and Publish are called from N goroutines at
//     once; the coalescer and counters are safe for that.
//   - Container-start events from Config.Containers are evaluated on their
//     own goroutine with their own evaluator.
//
// Run returns once the source ends (io.EOF, or an orderly close that
// Config.Closed recognises: the capture drains its ring first) and every
// event read has been processed, after flushing pending coalesced alerts.
// Publish must not block (outputs queue or spool). The pipeline also raises
// internal alerts when the source reports lost events.
package pipeline
