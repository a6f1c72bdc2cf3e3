// Package event defines Event, the one typed record that crosses every stage of
// the Tripline pipeline: capture → process table / enrichment → rules → outputs.
//
// Contract:
//   - An Event produced by the capture stage is borrowed: its strings and slices
//     may point into a buffer that is reused for the next event. A stage that
//     keeps an event (or any of its strings) beyond the call that handed it over
//     must keep Clone() of it instead.
//   - Process and Container values reached through pointers (Lineage, Container)
//     are immutable snapshots: whoever owns them replaces them, never mutates
//     them, so they may be read from any goroutine without locks.
//   - Type is Falco's evt.type; Class groups types into the pipeline's families
//     (exec, open, connect, fork, exit, container, file, socket, dup, priv,
//     mount, ns, memfd) for indexing and filtering. The types after
//     TypeProcexit carry their arguments in Event.Sys (SysArgs names them as
//     Falco does) and the socket their fd refers to in Event.Connect.
package event
