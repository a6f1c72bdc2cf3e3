package fields

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tripline/tripline/internal/event"
)

// ErrBadRedact is returned by NewRedactor for an unusable pattern.
var ErrBadRedact = errors.New("fields: bad redaction pattern")

// DefaultRedactPatterns are the environment variable names whose values
// alert outputs hide unless configured otherwise.
var DefaultRedactPatterns = []string{"*TOKEN*", "*SECRET*", "*PASSWORD*", "*KEY*"}

// Redacted replaces a hidden value in outputs.
const Redacted = "<redacted>"

// Redactor decides which environment values outputs hide: those of names
// matching one of its globs (case-insensitive). Conditions always see the
// real values; only rendering for alerts consults a Redactor. A nil or empty
// Redactor hides nothing. Immutable, safe for concurrent use.
type Redactor struct {
	pats []string
}

// NewRedactor builds a Redactor from name globs ("*TOKEN*").
func NewRedactor(patterns []string) (*Redactor, error) {
	r := &Redactor{}
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" || strings.ContainsAny(p, "= \x00") {
			return nil, fmt.Errorf("%w %q: want a non-empty name glob without '=' or spaces", ErrBadRedact, p)
		}
		r.pats = append(r.pats, p)
	}
	return r, nil
}

// DefaultRedactor returns the Redactor of DefaultRedactPatterns.
func DefaultRedactor() *Redactor { return defaultRedactor() }

var defaultRedactor = sync.OnceValue(func() *Redactor {
	r, _ := NewRedactor(DefaultRedactPatterns)
	return r
})

// Empty reports whether r hides nothing.
func (r *Redactor) Empty() bool { return r == nil || len(r.pats) == 0 }

// Hides reports whether the value of the variable name is hidden.
func (r *Redactor) Hides(name string) bool {
	if r == nil {
		return false
	}
	for _, p := range r.pats {
		if Glob(p, name, true) {
			return true
		}
	}
	return false
}

// envLookup returns the value of name in env ("NAME=value" entries).
func envLookup(env []string, name string) (string, bool) {
	for _, kv := range env {
		if len(kv) > len(name) && kv[len(name)] == '=' && kv[:len(name)] == name {
			return kv[len(name)+1:], true
		}
	}
	return "", false
}

// appendEnv appends env as Falco's proc.env prints it, "A=1 B=2", with the
// values r hides replaced.
func appendEnv(dst []byte, env []string, r *Redactor) []byte {
	for i, kv := range env {
		if i > 0 {
			dst = append(dst, ' ')
		}
		name, _, hasValue := strings.Cut(kv, "=")
		if hasValue && r.Hides(name) {
			dst = append(dst, name...)
			dst = append(dst, '=')
			dst = append(dst, Redacted...)
			continue
		}
		dst = append(dst, kv...)
	}
	return dst
}

// envValue is proc.env for process p: every variable, or the one named by a.
// Falco reads an unknown variable as the empty string.
func envValue(c *Ctx, p *event.Process, a *Arg, r *Redactor) (Value, bool) {
	if a != nil && a.Set {
		v, _ := envLookup(p.Env, a.Text)
		if v != "" && r.Hides(a.Text) {
			v = Redacted
		}
		return Value{Str: v}, true
	}
	start := c.begin()
	c.buf = appendEnv(c.buf, p.Env, r)
	return Value{Str: c.end(start)}, true
}

// aenvValue is proc.aenv: [N] the environment of ancestor N (0 is the
// process itself), [NAME] the first value of NAME from the parent upwards,
// and without argument every ancestor's environment (a filter matches any).
func aenvValue(c *Ctx, ev *event.Event, a *Arg, r *Redactor) (Value, bool) {
	if !hasProc(ev) {
		return Value{}, false
	}
	switch {
	case a != nil && a.Set && a.IsIndex:
		p := ancestor(ev, a.Index)
		if p == nil {
			return Value{}, false
		}
		return envValue(c, p, nil, r)
	case a != nil && a.Set:
		for _, p := range ev.Lineage {
			if p == nil {
				continue
			}
			if v, ok := envLookup(p.Env, a.Text); ok {
				if v != "" && r.Hides(a.Text) {
					v = Redacted
				}
				return Value{Str: v}, true
			}
		}
		return Value{Str: ""}, true
	}
	start := c.begin()
	n := 0
	for _, p := range ev.Lineage {
		if p == nil || len(p.Env) == 0 {
			continue
		}
		if n > 0 {
			c.buf = append(c.buf, ' ')
		}
		n++
		c.buf = appendEnv(c.buf, p.Env, r)
	}
	return Value{Str: c.end(start)}, n > 0
}

// envFields are proc.env, proc.aenv and their redacting renderers.
func envFields() []*Field {
	env := withArg(&Field{Name: "proc.env", Type: String, Classes: clsProc,
		Desc: "environment as 'NAME=value NAME2=value2'; [NAME] one variable's value"}, ArgKey, false, false)
	env.Extract = func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) {
		if !hasProc(ev) {
			return Value{}, false
		}
		return envValue(c, &ev.Proc, a, nil)
	}
	env.Redact = func(c *Ctx, ev *event.Event, a *Arg, r *Redactor) (Value, bool) {
		if !hasProc(ev) {
			return Value{}, false
		}
		return envValue(c, &ev.Proc, a, r)
	}

	aenv := withArg(&Field{Name: "proc.aenv", Type: String, Classes: clsProc,
		Desc: "ancestor environment: [N] of ancestor N, [NAME] first value from the parent up, none: any ancestor"}, ArgIndexOrKey, false, false)
	aenv.Extract = func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) { return aenvValue(c, ev, a, nil) }
	aenv.Redact = aenvValue
	aenv.Multi = func(ev *event.Event) int {
		if !hasProc(ev) {
			return 0
		}
		return len(ev.Lineage)
	}
	aenv.Nth = func(c *Ctx, ev *event.Event, i int) (Value, bool) {
		p := ev.Lineage[i]
		if p == nil || len(p.Env) == 0 {
			return Value{}, false
		}
		return envValue(c, p, nil, nil)
	}
	return []*Field{env, aenv}
}
