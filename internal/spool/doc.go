// Package spool is a bounded, crash-safe, on-disk FIFO of opaque records,
// each tagged with a priority (0 most severe … 7 least, Falco numbering).
//
// Contract:
//   - Append writes the record to the OS before returning (it survives a
//     SIGKILL of the process); fsync happens in batches (every SyncEvery
//     records and whenever the owner calls Sync).
//   - Next returns unread records in append order across all priorities;
//     Ack marks a record delivered; Rewind re-reads from the oldest
//     unacknowledged record. The acknowledged position is persisted by Sync,
//     so after a crash up to one sync interval of records is replayed:
//     delivery is at-least-once and consumers de-duplicate (JetStream does,
//     by message id).
//   - When MaxBytes would be exceeded, whole segments of the lowest priority
//     present are deleted, oldest first; a record less severe than everything
//     stored is itself refused. Every lost record is counted (Stats.Dropped).
//   - Records are length-prefixed with a CRC-32C; corrupt or torn records are
//     skipped and counted (Stats.Corrupt), never fatal.
//
// Layout: Dir/<priority>-<segment id, 16 hex>.seg and Dir/cursor. Each
// priority has its own chain of segments ("lane") so that dropping the least
// severe alerts is a file deletion; a global sequence number in every record
// restores the append order when reading.
package spool
