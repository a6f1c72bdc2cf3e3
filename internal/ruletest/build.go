package ruletest

import (
	"fmt"
	"maps"
	"strings"

	"github.com/tripline/tripline/internal/event"
)

// BuildEvent turns a test's flat field map into an event. It accepts what
// event.FromFields accepts plus container.mounts in Falco's text form
// ("source:dest:mode:rw:propagation", comma-separated).
func BuildEvent(fields map[string]any) (*event.Event, error) {
	fields = maps.Clone(fields)
	mounts, hasMounts := fields["container.mounts"]
	delete(fields, "container.mounts")
	e, err := event.FromFields(fields)
	if err != nil {
		return nil, err
	}
	if hasMounts {
		s, ok := mounts.(string)
		if !ok {
			return nil, fmt.Errorf("container.mounts: want Falco's text form source:dest:mode:rw:propagation, got %T", mounts)
		}
		ms, err := ParseMounts(s)
		if err != nil {
			return nil, err
		}
		c := event.Container{ID: "000000000000", FullID: "000000000000", Type: "containerd"}
		if e.Container != nil {
			c = *e.Container
		}
		c.Mounts = ms
		e.Container = &c
	}
	return e, nil
}

// ParseMounts parses Falco's container.mounts text form.
func ParseMounts(s string) ([]event.Mount, error) {
	var out []event.Mount
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p := strings.Split(item, ":")
		if len(p) < 2 || len(p) > 5 {
			return nil, fmt.Errorf("container.mounts: %q: want source:dest[:mode[:rw[:propagation]]]", item)
		}
		for len(p) < 5 {
			p = append(p, "")
		}
		out = append(out, event.Mount{Source: p[0], Dest: p[1], Mode: p[2], RW: p[3] == "true", Propagation: p[4]})
	}
	return out, nil
}
