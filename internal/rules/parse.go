package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// AST of a condition. Offsets (at) are byte offsets into the parsed text;
// src locates that text in its rules file.

type node interface{ offset() int }

type andNode struct {
	kids []node
	at   int
}

type orNode struct {
	kids []node
	at   int
}

type notNode struct {
	x  node
	at int
}

// refNode is a bare identifier: a macro reference.
type refNode struct {
	name string
	at   int
	src  *exprSrc
}

// checkNode is "operand op value(s)".
type checkNode struct {
	lhs  *operandNode
	op   string
	vals []valueLit // single value, or list items when list
	list bool
	rhs  *operandNode // val(field) or a transformer on the right side
	at   int
	opAt int
	src  *exprSrc
}

// operandNode is a field, possibly wrapped in transformers.
type operandNode struct {
	xform    string // "" for a plain field, else tolower/toupper/b64/basename/len/val
	inner    *operandNode
	field    string
	arg      string
	hasArg   bool
	at       int
	fieldEnd int
}

type valueLit struct {
	text   string
	quoted bool
	at     int
}

func (n *andNode) offset() int   { return n.at }
func (n *orNode) offset() int    { return n.at }
func (n *notNode) offset() int   { return n.at }
func (n *refNode) offset() int   { return n.at }
func (n *checkNode) offset() int { return n.at }

// ParseError is a condition syntax error at byte offset Pos.
type ParseError struct {
	Pos int
	Msg string
}

func (e *ParseError) Error() string { return fmt.Sprintf("at offset %d: %s", e.Pos, e.Msg) }

const maxDepth = 1000

var transformers = map[string]bool{"tolower": true, "toupper": true, "b64": true, "basename": true, "len": true}

// unsupported transformers from newer Falco, recognised for a clear error.
var unsupportedTransformers = map[string]bool{"join": true, "concat": true, "getopt": true}

var wordOps = map[string]bool{
	"contains": true, "icontains": true, "bcontains": true, "startswith": true, "bstartswith": true,
	"endswith": true, "glob": true, "iglob": true, "pmatch": true, "in": true, "intersects": true,
	"exists": true, "regex": true,
}

func isListOp(op string) bool { return op == "in" || op == "intersects" || op == "pmatch" }

type parser struct {
	s     string
	i     int
	depth int
	src   *exprSrc
}

// ParseCondition parses a Falco condition (lists must already be
// substituted). It never panics.
func ParseCondition(s string) (n node, err error) {
	return parseWith(s, nil)
}

func parseWith(s string, src *exprSrc) (n node, err error) {
	defer func() {
		if r := recover(); r != nil {
			if pe, ok := r.(*ParseError); ok {
				n, err = nil, pe
				return
			}
			n, err = nil, &ParseError{Pos: 0, Msg: fmt.Sprint("internal parser error: ", r)}
		}
	}()
	p := &parser{s: s, src: src}
	p.blanks()
	if p.i >= len(p.s) {
		p.fail(p.i, "empty condition")
	}
	n = p.expr()
	p.blanks()
	if p.i < len(p.s) {
		p.fail(p.i, fmt.Sprintf("unexpected %s, expecting 'and', 'or' or the end of the condition", p.near()))
	}
	return n, nil
}

func (p *parser) fail(at int, msg string) { panic(&ParseError{Pos: at, Msg: msg}) }

func (p *parser) near() string {
	if p.i >= len(p.s) {
		return "end of condition"
	}
	end := p.i
	for end < len(p.s) && end-p.i < 20 && !isBlank(p.s[end]) {
		end++
	}
	if end == p.i {
		end = p.i + 1
	}
	return strconv.Quote(p.s[p.i:end])
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\b' || c == '\f' || c == '\v'
}

func (p *parser) blanks() {
	for p.i < len(p.s) && isBlank(p.s[p.i]) {
		p.i++
	}
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.i, "condition nested too deeply")
	}
}

// keyword consumes word w if it is followed by a blank or one of the chars
// in follow (or the end when atEnd).
func (p *parser) keyword(w, follow string, atEnd bool) bool {
	if !strings.HasPrefix(p.s[p.i:], w) {
		return false
	}
	j := p.i + len(w)
	if j == len(p.s) {
		if !atEnd {
			return false
		}
	} else if !isBlank(p.s[j]) && !strings.ContainsRune(follow, rune(p.s[j])) {
		return false
	}
	p.i = j
	return true
}

func (p *parser) expr() node {
	p.enter()
	defer func() { p.depth-- }()
	return p.or()
}

func (p *parser) or() node {
	at := p.i
	first := p.and()
	kids := []node{first}
	for {
		save := p.i
		p.blanks()
		if !p.keyword("or", "(", true) {
			p.i = save
			break
		}
		kids = append(kids, p.and())
	}
	if len(kids) == 1 {
		return first
	}
	return &orNode{kids: kids, at: at}
}

func (p *parser) and() node {
	at := p.i
	first := p.not()
	kids := []node{first}
	for {
		save := p.i
		p.blanks()
		if !p.keyword("and", "(", true) {
			p.i = save
			break
		}
		kids = append(kids, p.not())
	}
	if len(kids) == 1 {
		return first
	}
	return &andNode{kids: kids, at: at}
}

func (p *parser) not() node {
	p.blanks()
	at := p.i
	if p.keyword("not", "(", true) {
		p.enter()
		x := p.not()
		p.depth--
		return &notNode{x: x, at: at}
	}
	return p.check()
}

func isIdentStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || c >= '0' && c <= '9' || c == '_' }

// name lexes [a-zA-Z][a-zA-Z0-9_]* ( . [a-zA-Z][a-zA-Z0-9_]* )*.
func (p *parser) name() (string, bool) {
	start := p.i
	if p.i >= len(p.s) || !isIdentStart(p.s[p.i]) {
		return "", false
	}
	for {
		for p.i < len(p.s) && isIdentChar(p.s[p.i]) {
			p.i++
		}
		if p.i+1 < len(p.s) && p.s[p.i] == '.' && isIdentStart(p.s[p.i+1]) {
			p.i++
			continue
		}
		break
	}
	return p.s[start:p.i], true
}

func (p *parser) check() node {
	p.blanks()
	at := p.i
	if p.i >= len(p.s) {
		p.fail(p.i, "unexpected end of condition, expecting a check, a macro or '('")
	}
	if p.s[p.i] == '(' {
		p.i++
		n := p.expr()
		p.blanks()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			p.fail(p.i, fmt.Sprintf("unexpected %s, expecting ')' to close the '(' at offset %d", p.near(), at))
		}
		p.i++
		return n
	}
	var lhs *operandNode
	if op := p.operand(true); op != nil {
		lhs = op
	} else {
		nm, ok := p.name()
		if !ok {
			p.fail(p.i, fmt.Sprintf("unexpected %s, expecting a field, a macro or '('", p.near()))
		}
		if nm == "and" || nm == "or" || nm == "not" {
			p.i = at
			p.fail(at, fmt.Sprintf("unexpected keyword %q, expecting a check, a macro or '('", nm))
		}
		if !strings.Contains(nm, ".") {
			return &refNode{name: nm, at: at, src: p.src}
		}
		p.i = at
		lhs = p.field()
	}
	return p.condition(lhs, at)
}

// operand parses a transformer call (tolower(f) ...) at the current position,
// or returns nil when there is none. val( is accepted when allowVal is false
// only on the right side.
func (p *parser) operand(lhs bool) *operandNode {
	at := p.i
	nm, ok := p.name()
	if !ok || p.i >= len(p.s) || p.s[p.i] != '(' {
		p.i = at
		return nil
	}
	switch {
	case transformers[nm]:
	case nm == "val" && !lhs:
	case nm == "val":
		p.fail(at, "val() can only be used on the right side of a comparison")
	case unsupportedTransformers[nm]:
		p.fail(at, fmt.Sprintf("transformer %s() is not supported", nm))
	default:
		p.i = at
		return nil
	}
	p.i++ // (
	p.enter()
	p.blanks()
	var inner *operandNode
	if nm != "val" {
		inner = p.operand(true)
	}
	if inner == nil {
		inner = p.field()
	}
	p.depth--
	p.blanks()
	if p.i >= len(p.s) || p.s[p.i] != ')' {
		p.fail(p.i, fmt.Sprintf("unexpected %s, expecting ')' to close %s(", p.near(), nm))
	}
	p.i++
	return &operandNode{xform: nm, inner: inner, at: at}
}

// field parses FieldName ('[' arg ']')?.
func (p *parser) field() *operandNode {
	p.blanks()
	at := p.i
	nm, ok := p.name()
	if !ok || !strings.Contains(nm, ".") {
		p.i = at
		p.fail(at, fmt.Sprintf("unexpected %s, expecting a field name", p.near()))
	}
	o := &operandNode{field: nm, at: at}
	if p.i < len(p.s) && p.s[p.i] == '[' {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '"' || p.s[p.i] == '\'') {
			o.arg = p.quoted()
		} else {
			start := p.i
			for p.i < len(p.s) && !strings.ContainsRune("[]\"' \t\n\r\b", rune(p.s[p.i])) {
				p.i++
			}
			o.arg = p.s[start:p.i]
		}
		if p.i >= len(p.s) || p.s[p.i] != ']' {
			p.fail(p.i, fmt.Sprintf("unexpected %s, expecting ']' after the argument of %s", p.near(), nm))
		}
		p.i++
		o.hasArg = true
	}
	o.fieldEnd = p.i
	return o
}

func (p *parser) condition(lhs *operandNode, at int) node {
	p.blanks()
	opAt := p.i
	op := ""
	for _, sym := range []string{"==", "=", "!=", "<=", "<", ">=", ">"} {
		if strings.HasPrefix(p.s[p.i:], sym) {
			op = sym
			p.i += len(sym)
			break
		}
	}
	if op == "" {
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= 'a' && p.s[p.i] <= 'z' {
			p.i++
		}
		w := p.s[start:p.i]
		follow := p.i < len(p.s) && (isBlank(p.s[p.i]) || (isListOp(w) && p.s[p.i] == '('))
		switch {
		case w == "exists" && (p.i == len(p.s) || isBlank(p.s[p.i]) || p.s[p.i] == ')'):
			return &checkNode{lhs: lhs, op: "exists", at: at, opAt: opAt, src: p.src}
		case (w == "oneof" || w == "anyof" || w == "allof"):
			p.fail(start, fmt.Sprintf("operator modifier %q is not supported", w))
		case wordOps[w] && w != "exists" && follow:
			op = w
		default:
			p.i = start
			if w == "" {
				p.fail(opAt, fmt.Sprintf("unexpected %s after field %s, expecting an operator", p.near(), lhsName(lhs)))
			}
			p.fail(opAt, fmt.Sprintf("unknown operator %q after field %s", w, lhsName(lhs)))
		}
	}
	c := &checkNode{lhs: lhs, op: op, at: at, opAt: opAt, src: p.src}
	p.blanks()
	if rhs := p.operand(false); rhs != nil {
		c.rhs = rhs
		return c
	}
	if isListOp(op) {
		if p.i >= len(p.s) || p.s[p.i] != '(' {
			p.fail(p.i, fmt.Sprintf("unexpected %s, expecting '(' and a list of values after %q", p.near(), op))
		}
		c.list = true
		c.vals = p.list()
		return c
	}
	if p.i < len(p.s) && p.s[p.i] == '(' {
		p.fail(p.i, fmt.Sprintf("a list of values needs 'in', 'intersects' or 'pmatch', not %q", op))
	}
	v, ok := p.value()
	if !ok {
		p.fail(p.i, fmt.Sprintf("unexpected %s, expecting a value after %q", p.near(), op))
	}
	c.vals = []valueLit{v}
	return c
}

func lhsName(o *operandNode) string {
	for o.inner != nil {
		o = o.inner
	}
	return o.field
}

func (p *parser) list() []valueLit {
	open := p.i
	p.i++ // (
	var vals []valueLit
	p.blanks()
	if p.i < len(p.s) && p.s[p.i] == ')' {
		p.i++
		return vals
	}
	for {
		p.blanks()
		v, ok := p.value()
		if !ok {
			p.fail(p.i, fmt.Sprintf("unexpected %s in the list opened at offset %d, expecting a value", p.near(), open))
		}
		vals = append(vals, v)
		p.blanks()
		if p.i >= len(p.s) {
			p.fail(p.i, fmt.Sprintf("unterminated list opened at offset %d, expecting ')'", open))
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case ')':
			p.i++
			return vals
		default:
			p.fail(p.i, fmt.Sprintf("unexpected %s in a list, expecting ',' or ')'", p.near()))
		}
	}
}

// value lexes a quoted string or a bare string [^ \b\t\n\r(),="']+.
func (p *parser) value() (valueLit, bool) {
	at := p.i
	if p.i >= len(p.s) {
		return valueLit{}, false
	}
	if c := p.s[p.i]; c == '"' || c == '\'' {
		return valueLit{text: p.quoted(), quoted: true, at: at}, true
	}
	for p.i < len(p.s) && !strings.ContainsRune(" \b\t\n\r\f\v(),=\"'", rune(p.s[p.i])) {
		p.i++
	}
	if p.i == at {
		return valueLit{}, false
	}
	return valueLit{text: p.s[at:p.i], at: at}, true
}

// quoted lexes and unescapes a "..." or '...' string like Falco's
// unescape_str.
func (p *parser) quoted() string {
	q := p.s[p.i]
	start := p.i
	p.i++
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			p.fail(start, "unterminated quoted string")
		}
		c := p.s[p.i]
		if c == q {
			p.i++
			return b.String()
		}
		if c != '\\' {
			b.WriteByte(c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			p.fail(start, "unterminated quoted string")
		}
		e := p.s[p.i+1]
		p.i += 2
		switch e {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\':
			b.WriteByte('\\')
		case '/':
			b.WriteByte('/')
		case ' ':
			b.WriteString("\\ ")
		case 'x':
			if p.i+2 > len(p.s) {
				p.fail(p.i-2, "invalid \\x escape: expecting two hex digits")
			}
			n, err := strconv.ParseUint(p.s[p.i:p.i+2], 16, 8)
			if err != nil {
				p.fail(p.i-2, "invalid \\x escape: expecting two hex digits")
			}
			b.WriteByte(byte(n))
			p.i += 2
		default:
			if e == q {
				b.WriteByte(q)
				break
			}
			p.fail(p.i-2, fmt.Sprintf("invalid escape sequence \\%c in quoted string", e))
		}
	}
}
