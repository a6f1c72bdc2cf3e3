// Package ruletest runs rule tests: YAML files kept beside the rules that give
// input events in the flat Falco-field form and the alerts expected from them.
//
//	rules: [..]                  # rule files or folders, relative to this file (default: ..)
//	tests:
//	  - name: shell in container fires
//	    event: {evt.type: execve, proc.name: bash, container.id: 3f1a2b3c4d5e}
//	    expect: [Terminal shell in container]   # exact set of rules that fire; [] = none
//	    expect_fields: {Terminal shell in container: {proc.name: bash}}
//	    run: "sh -c true"        # live mode only: a shell snippet that triggers the rule
//	    container: true          # live mode only: run the snippet in a container
//
// Offline runs need no privileges: events are built with event.FromFields and
// evaluated by the rules engine exactly as the sensor would, for every event
// type package event represents (not only those the probes capture). A test
// whose evt.type is a Falco event type this build has no representation for
// yet, or that sets a Falco field this build never supplies (proc.env), is
// reported as skipped, not failed.
package ruletest
