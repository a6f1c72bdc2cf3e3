// Package fields is the typed catalogue of the Falco filter fields the sensor
// supplies, with one extractor per field reading an *event.Event.
//
// Contract:
//   - Default builds the catalogue; Resolve parses a field as written in a
//     condition or an output (proc.aname[2], evt.arg.flags,
//     container.label[app]) and returns the field and its argument.
//   - Every field records the event classes that supply it. Falco fields the
//     sensor knows but cannot supply are catalogued with no classes so rules
//     using them load; they always read as missing (<NA>).
//   - Extractors never allocate for stored values; derived strings
//     (proc.cmdline, fd.name of a socket, evt.arg.flags) are built in the
//     caller's Ctx and stay valid until Ctx.Reset. Callers that keep a value
//     must copy it.
//   - container.id is "host" when Event.Container is nil and the process has
//     no container id.
//   - Fields that may carry environment values (proc.env, proc.aenv,
//     evt.arg.env) also have a Redact extractor: the value as alert outputs
//     show it, with the values of variables a Redactor hides replaced by
//     Redacted. Conditions use Extract and see every value.
//   - Str (String fields) and Num (Int, Port, Bool), when set, return what
//     Extract returns in Value.Str or Value.Num, without building a Value.
//   - user.* and group.name read the names the users package resolved into
//     the event; without them only id 0 is named ("root").
package fields
