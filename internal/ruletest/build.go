package ruletest

import (
	"fmt"
	"maps"
	"strings"

	"github.com/tripline/tripline/internal/event"
)

// BuildEvent turns a test's flat field map into an event. It accepts what
// event.FromFields accepts plus the container posture fields a test needs:
// container.mounts in Falco's text form ("source:dest:mode:rw:propagation",
// comma-separated), container.capabilities (a list or a space-separated
// string) and container.user.
func BuildEvent(fields map[string]any) (*event.Event, error) {
	fields = maps.Clone(fields)
	extra := map[string]any{}
	for _, k := range []string{"container.mounts", "container.capabilities", "container.user"} {
		if v, ok := fields[k]; ok {
			extra[k] = v
			delete(fields, k)
		}
	}
	e, err := event.FromFields(fields)
	if err != nil {
		return nil, err
	}
	if len(extra) == 0 {
		return e, nil
	}
	c := event.Container{ID: "000000000000", FullID: "000000000000", Type: "containerd"}
	if e.Container != nil {
		c = *e.Container
	}
	for k, v := range extra {
		switch k {
		case "container.mounts":
			s, ok := v.(string)
			if !ok {
				return nil, fmt.Errorf("container.mounts: want Falco's text form source:dest:mode:rw:propagation, got %T", v)
			}
			if c.Mounts, err = ParseMounts(s); err != nil {
				return nil, err
			}
		case "container.capabilities":
			if c.Capabilities, err = stringList(k, v); err != nil {
				return nil, err
			}
		case "container.user":
			c.User = fmt.Sprint(v)
		}
	}
	e.Container = &c
	e.Proc.ContainerID = c.FullID
	return e, nil
}

func stringList(key string, v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return strings.Fields(x), nil
	case []any:
		out := make([]string, 0, len(x))
		for _, item := range x {
			s, ok := item.(string)
			if !ok {
				return nil, fmt.Errorf("%s: list items must be strings, got %T", key, item)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: want a list of strings, got %T", key, v)
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
