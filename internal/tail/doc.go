// Package tail reads alerts back from the JetStream alert stream and
// renders them for a terminal: `sensor tail`.
//
// Contract: Run connects (retrying forever with a clear message on the
// status writer while the broker is unreachable or the stream is missing),
// replays from the stream when asked (Since/All, through an ordered
// ephemeral consumer) or follows new alerts, filters them, and writes one
// line per alert. Everything that came from event data is escaped before it
// reaches the terminal: control characters, ANSI escapes (ESC shows as the
// text \x1b), C1 controls, Unicode bidi overrides and invalid UTF-8. JSON
// mode prints each message as one compact JSON line, with the same
// characters \u-escaped.
package tail
