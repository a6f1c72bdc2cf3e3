// Package rules loads Falco-language rules files and evaluates them against
// events.
//
// Contract:
//   - Load/LoadFiles read YAML rules files in order (lists, macros, rules,
//     exceptions, override/append, redefinition) and return a Ruleset and a
//     Report with every error and warning located as file:line:col; a load
//     never panics, whatever the input. err != nil iff the Report has errors
//     (or reading failed); the Ruleset then holds the rules that compiled.
//   - Loading is bounded: LoadFiles reads only regular files of at most
//     Options.MaxFileBytes (never blocking on a FIFO or reading a device),
//     and limits on list items, condition size, total checks, total list
//     substitution and changes per name keep time and memory linear in the
//     input; each is a located error. LoadContext/LoadFilesContext stop
//     between items when the context ends. A list reference loop and an
//     item of two kinds (rule and macro, ...) are errors.
//   - Lists are substituted into conditions as text before parsing and
//     macros are substituted on the syntax tree, as Falco does. Each
//     condition compiles once to an expr program over a typed environment
//     (env.P): every check (field op value) becomes a typed Go predicate and
//     the program combines their results, so evaluation boxes nothing.
//   - Rules are indexed by event type. A rule none of whose event types the
//     sensor captures is skipped with a warning (Report.Skipped); one with
//     some uncaptured types compiles with a warning; one with no evt.type
//     restriction runs on every event type with Falco's "too many event
//     types" warning (unless warn_evttypes: false).
//   - Before running a rule's program the evaluator checks, in Go, a
//     necessary condition derived from it (negations relaxed to true),
//     specialised per event type (evt.type checks folded, the string checks
//     of one field under one 'or' merged into one read); on typical events
//     no program runs at all. Predicate results and the values of costly or
//     transformed fields are computed once per event; a check of a cheap
//     string or numeric field against constants reads the bare string or
//     number (Field.Str/Num), never a Value. TestFastPathMatchesReference
//     holds all of this to a plain interpretation of each condition.
//   - KernelFilter derives, per open type, a condition every event an
//     enabled rule matches satisfies (access mode, result, path prefixes,
//     '/'-led texts, file names) from the positive checks at the top of each
//     condition; a rule with none makes the type unfiltered. Pass is its
//     reference semantics, which the capture's BPF filter implements; a
//     property test checks it never drops an event a rule matches. For
//     connect it derives per rule the family, outcome, remote port and
//     address sets and the container requirement, from exact checks under
//     'not' too; for the file-change types (Files), per rule, the file names
//     of path arguments as passed, bits of a flags argument, or the
//     container requirement; Host lists the types only container rules use. Passes is
//     the whole filter's reference, given whether the process is in the
//     host's mount namespace (never true of a container process).
//   - A Ruleset is immutable once SetRedaction (if called) has returned, and
//     safe to share; an Evaluator (one per goroutine) matches events without
//     allocating.
//   - Outputs (AppendOutput, OutputFields) hide the values of environment
//     variables the Ruleset's Redactor hides (fields.DefaultRedactor unless
//     SetRedaction says otherwise); conditions see the real values.
//   - Semantics follow Falco: a comparison on a missing field is false
//     (exists tests presence), glob's '*' matches '/', pmatch matches whole
//     path components, regex is RE2 matching the whole value, in on numeric
//     and port fields compares numbers.
//
// Known differences from Falco: "info" is a Falco priority and loads without
// a warning (the product aliases HIGH, MEDIUM and LOW warn); the operator
// modifiers oneof/anyof/allof and the join/concat/getopt transformers are
// rejected with a clear error; an output field width (%20proc.name) is
// accepted and ignored; for fields that match "any of several values"
// without an argument (proc.aname, fd.ip, fd.port, fd.net) '!=' means none
// of the values is equal.
package rules
