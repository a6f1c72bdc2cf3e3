package rules

import (
	"fmt"
	"strings"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// outSeg is a piece of a rule output: literal text or a field.
type outSeg struct {
	lit string
	op  *operand
	key string // the token as written, without '%': the output_fields key
}

func isFieldChar(c byte) bool { return isIdentChar(c) || c == '.' }

// compileOutput parses Falco's %field syntax. It returns the segments, the
// errors and the first unknown-field message (for skip-if-unknown-filter).
func (l *loader) compileOutput(r *ruleDef) ([]outSeg, []Diag, string) {
	s := r.output
	item := fmt.Sprintf("rule %q", r.name)
	var segs []outSeg
	var errs []Diag
	unknown := ""
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, outSeg{lit: lit.String()})
			lit.Reset()
		}
	}
	tokStart := 0
	fail := func(msg string) {
		d := l.diagAt(r.file, r.outputNode, item, msg)
		if r.outputLead >= 0 && r.outputNode != nil {
			d.Line, d.Col = r.file.scalarPos(r.outputNode, r.outputLead+tokStart)
		}
		errs = append(errs, d)
	}
	i := 0
	for i < len(s) {
		c := s[i]
		if c != '%' {
			lit.WriteByte(c)
			i++
			continue
		}
		tokStart = i
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++ // field width: accepted and ignored
		}
		start := j
		// %transformer(field)
		if k := strings.IndexByte(s[j:], '('); k > 0 && transformers[s[j:j+k]] {
			end := strings.IndexByte(s[j+k:], ')')
			if end < 0 {
				fail(fmt.Sprintf("invalid output format: unterminated %s(", s[j:j+k]))
				return nil, errs, unknown
			}
			tok := s[start : j+k+end+1]
			n, err := parseOperandText(tok)
			if err == nil {
				var op *operand
				op, err = l.compileOperand(n)
				if err == nil {
					flush()
					segs = append(segs, outSeg{op: op, key: tok})
					i = j + k + end + 1
					continue
				}
			}
			fail(fmt.Sprintf("invalid output format token %%%s: %v", tok, trimErr(err)))
			i = j + k + end + 1
			continue
		}
		for j < len(s) && isFieldChar(s[j]) {
			j++
		}
		name := strings.TrimRight(s[start:j], ".")
		if name == "" {
			lit.WriteByte('%')
			i++
			continue
		}
		end := start + len(name)
		bracket, hasBracket := "", false
		if end < len(s) && s[end] == '[' {
			if k := strings.IndexByte(s[end:], ']'); k > 0 {
				bracket, hasBracket = s[end+1:end+k], true
			}
		}
		if name == "container.info" { // deprecated: expands to nothing
			i = end
			continue
		}
		// Longest prefix that is a field (Falco's formatter does the same).
		var f *fields.Field
		var arg fields.Arg
		var err, firstErr error
		for {
			f, arg, err = l.cat.Resolve(name, bracket, hasBracket && end == start+len(name))
			if firstErr == nil {
				firstErr = err
			}
			if err == nil || !strings.Contains(name, ".") {
				break
			}
			if hasBracket && end == start+len(name) {
				break
			}
			name = name[:strings.LastIndexByte(name, '.')]
		}
		if err != nil {
			msg := fmt.Sprintf("invalid output format token %%%s: %v", s[start:j], trimErr(firstErr))
			if unknown == "" {
				unknown = msg
			}
			fail(msg)
			i = j
			continue
		}
		next := start + len(name)
		key := name
		if hasBracket && arg.Set && next == end {
			next = end + len(bracket) + 2
			key = name + "[" + bracket + "]"
		}
		if f.FilterOnly && f.Multi == nil || f.FilterOnly && !arg.Set {
			fail(fmt.Sprintf("field %s can only be used in conditions, not in outputs", name))
			i = next
			continue
		}
		flush()
		segs = append(segs, outSeg{op: fieldOperand(f, arg, key, -1), key: key})
		i = next
	}
	flush()
	return segs, errs, unknown
}

func trimErr(err error) string { return strings.TrimPrefix(err.Error(), "fields: ") }

// parseOperandText parses "tolower(proc.name)" with the condition parser.
func parseOperandText(s string) (o *operandNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			if pe, ok := r.(*ParseError); ok {
				o, err = nil, pe
				return
			}
			panic(r)
		}
	}()
	p := &parser{s: s}
	o = p.operand(true)
	if o == nil || p.i != len(s) {
		return nil, fmt.Errorf("invalid transformer expression %q", s)
	}
	return o, nil
}

// AppendOutput appends the rendered output (without Falco's time/priority
// prefix) to dst; unavailable fields print as <NA>.
func (r *Rule) AppendOutput(dst []byte, ev *event.Event) []byte {
	var c scratch
	for _, s := range r.out {
		if s.op == nil {
			dst = append(dst, s.lit...)
			continue
		}
		v, ok := r.outValue(&c, s.op, ev)
		if !ok {
			dst = append(dst, "<NA>"...)
			continue
		}
		dst = fields.AppendValue(dst, s.op.typ, v)
	}
	return dst
}

// OutputFields returns every %field of the output keyed as written, typed
// like Falco's JSON: int64 for numbers, bool, string, []string for lists,
// nil when unavailable.
func (r *Rule) OutputFields(ev *event.Event) map[string]any {
	var c scratch
	m := make(map[string]any, len(r.out))
	for _, s := range r.out {
		if s.op == nil {
			continue
		}
		if s.op.xform == "" && s.op.f.TimeJSON {
			m[s.key] = ev.Timestamp
			continue
		}
		v, ok := r.outValue(&c, s.op, ev)
		if !ok {
			m[s.key] = nil
			continue
		}
		m[s.key] = fields.JSON(s.op.typ, v)
	}
	return m
}

// outValue extracts an output field, hiding the environment values the
// rule's Redactor hides (a transformer of such a field prints Redacted
// whole).
func (r *Rule) outValue(c *scratch, op *operand, ev *event.Event) (fields.Value, bool) {
	red := r.redact
	if red == nil {
		red = fields.DefaultRedactor()
	}
	if op.xform == "" && op.f.Redact != nil {
		var a *fields.Arg
		if op.arg.Set {
			a = &op.arg
		}
		return op.f.Redact(&c.Ctx, ev, a, red)
	}
	base := op
	for base.inner != nil {
		base = base.inner
	}
	if base != op && base.f != nil && base.f.Redact != nil && !red.Empty() {
		v, ok := op.get(c, ev)
		if ok {
			v = fields.Value{Str: fields.Redacted}
		}
		return v, ok
	}
	return op.get(c, ev)
}

// OutputKeys lists the output_fields keys in order of appearance.
func (r *Rule) OutputKeys() []string {
	var out []string
	for _, s := range r.out {
		if s.op != nil {
			out = append(out, s.key)
		}
	}
	return out
}
