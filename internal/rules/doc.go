// Package rules loads Falco-language rules files and evaluates them against
// events.
//
// Contract:
//   - Load/LoadFiles read YAML rules files in order (lists, macros, rules,
//     exceptions, override/append, redefinition) and return a Ruleset and a
//     Report with every error and warning located as file:line:col; a load
//     never panics, whatever the input.
//   - Lists are substituted into conditions as text before parsing and
//     macros are substituted on the syntax tree, as Falco does. Each
//     condition compiles once to an expr program over a typed environment:
//     every check (field op value) becomes a typed Go predicate, and the
//     program combines their results, so evaluation boxes nothing.
//   - Rules are indexed by event type. A rule whose event types the sensor
//     does not capture is skipped with a warning, never dropped silently.
//   - A Ruleset is immutable and safe to share; an Evaluator (one per
//     goroutine) matches events without allocating.
//   - Semantics follow Falco: a comparison on a missing field is false
//     (exists tests presence), glob's '*' matches '/', pmatch matches whole
//     path components, regex is RE2 matching the whole value.
package rules
