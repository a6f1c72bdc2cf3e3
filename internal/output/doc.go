// Package output delivers alerts: to stdout, to a file, or to NATS
// JetStream through a crash-safe on-disk spool.
//
// Contract:
//   - Sink.Publish never blocks on the network and never drops silently: the
//     NATS sink puts the alert in a bounded in-memory queue that a writer
//     goroutine appends to the spool; when the queue is full the caller
//     appends the backlog and its alert to the spool itself (local disk I/O,
//     order kept). Every loss (spool full) is counted in Stats and reported
//     as an internal alert (rule alert.RuleSpoolDrop).
//   - The NATS sender reads the spool in order and publishes each alert to
//     JetStream with header Nats-Msg-Id = alert UUID, advancing the spool's
//     acknowledged position only on a JetStream ack. After an error it
//     rewinds to the first unacknowledged alert, so delivery is in order and
//     at least once on the wire; the stream's duplicate window
//     (NATSConfig.DedupWindow, default 10 min) makes it exactly once for
//     subscribers as long as a replay happens within that window (a sensor
//     restarted after a crash replays at most one spool sync interval).
//   - Sinks are safe for concurrent Publish; Close flushes and is idempotent.
//     Libraries don't log: asynchronous errors go to NATSConfig.OnError and
//     to Stats().LastError.
package output
