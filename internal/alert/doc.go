// Package alert defines the alert that Tripline emits when a rule matches, its
// Falco-compatible JSON encoding, NATS subject templating and the coalescer
// that folds floods of identical alerts into one follow-up.
//
// Contract:
//   - AppendJSON writes one Falco-compatible JSON object (no trailing newline):
//     keys in Falco's (alphabetical) order hostname, output, output_fields,
//     priority, rule, source, tags, time, then falcosidekick's uuid. `output`
//     is "<HH:MM:SS.nnnnnnnnn>: <Priority> <rendered output>" in UTC, `time`
//     is RFC 3339 with nanoseconds in UTC, output_fields keeps JSON types
//     (numbers stay numbers, nil becomes null) and always carries evt.time in
//     nanoseconds like Falco does. Invalid UTF-8 becomes U+FFFD.
//   - An Alert is immutable once handed to a Coalescer or a sink.
//   - Priority numbering matches Falco (Emergency=0 … Debug=7): a smaller
//     value is more severe.
package alert
