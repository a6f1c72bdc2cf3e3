package rules

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// predFn evaluates one check against an event. It must not panic or
// allocate (beyond the scratch buffer).
type predFn func(c *scratch, ev *event.Event) bool

// scratch is an evaluator's per-event working memory: the buffer derived
// strings are built in, and a cache of expensive operand values
// (proc.cmdline, capability sets, ...) shared by every check of the event.
type scratch struct {
	fields.Ctx
	gen   uint32
	slots []slotVal
	tmp   fields.Value // a value of a multi-valued field being matched
}

type slotVal struct {
	gen uint32
	ok  bool
	v   fields.Value
}

// cachedFields are the fields whose extraction builds a string, worth
// caching per event.
var cachedFields = map[string]bool{
	"proc.cmdline": true, "proc.args": true, "proc.pcmdline": true, "proc.exeline": true, "proc.acmdline": true,
	"proc.aargs": true, "thread.cap_effective": true, "thread.cap_permitted": true, "thread.cap_inheritable": true,
	"evt.arg": true, "evt.args": true, "evt.info": true, "fd.name": true, "container.mounts": true,
	"container.labels": true, "k8s.pod.labels": true, "fd.containername": true, "evt.time": true,
}

// operand is a compiled field reference with optional transformers.
type operand struct {
	f     *fields.Field
	arg   fields.Arg
	argp  *fields.Arg // &arg when an argument was given, else nil
	xform string
	inner *operand
	typ   fields.Type
	key   string // canonical text, e.g. "tolower(proc.name)"
	slot  int    // per-event cache slot shared by operands of the same key
	cache bool   // worth caching: extraction builds a string or transforms
}

// get returns the operand's value; outputs use it, with or without slots.
func (o *operand) get(c *scratch, ev *event.Event) (fields.Value, bool) {
	if o.slot >= 0 && o.slot < len(c.slots) {
		p, ok := o.ref(c, ev)
		return *p, ok
	}
	return o.compute(c, ev)
}

// ref returns the operand's value in its per-event slot, extracting it on
// first use in the event. Checks pass it on by pointer: a Value is 72
// bytes, and copying it through every check was most of their cost. The
// evaluator sizes its slots for every operand, so the slot exists.
func (o *operand) ref(c *scratch, ev *event.Event) (*fields.Value, bool) {
	s := &c.slots[o.slot]
	if s.gen != c.gen {
		switch {
		case o.xform == "" && o.f.Str != nil: // the same Value, without copying one
			var str string
			str, s.ok = o.f.Str(&c.Ctx, ev, o.argp)
			s.v = fields.Value{Str: str}
		case o.xform == "" && o.f.Num != nil:
			var n int64
			n, s.ok = o.f.Num(&c.Ctx, ev, o.argp)
			s.v = fields.Value{Num: n}
		default:
			s.v, s.ok = o.compute(c, ev)
		}
		s.gen = c.gen
	}
	return &s.v, s.ok
}

// fieldOperand returns the operand reading field f.
func fieldOperand(f *fields.Field, arg fields.Arg, key string, slot int) *operand {
	o := &operand{f: f, arg: arg, typ: f.Type, key: key, slot: slot, cache: cachedFields[f.Name]}
	if arg.Set {
		o.argp = &o.arg
	}
	return o
}

func (o *operand) compute(c *scratch, ev *event.Event) (fields.Value, bool) {
	if o.xform == "" {
		return o.f.Extract(&c.Ctx, ev, o.argp)
	}
	v, ok := o.inner.get(c, ev)
	if !ok {
		return v, false
	}
	switch o.xform {
	case "tolower", "toupper":
		s := v.Str
		upper := o.xform == "toupper"
		need := false
		for i := 0; i < len(s); i++ {
			if ch := s[i]; (upper && 'a' <= ch && ch <= 'z') || (!upper && 'A' <= ch && ch <= 'Z') {
				need = true
				break
			}
		}
		if !need {
			return v, true
		}
		return fields.Value{Str: appendCase(&c.Ctx, s, upper)}, true
	case "basename":
		return fields.Value{Str: baseName(v.Str)}, true
	case "b64":
		return b64(&c.Ctx, v.Str)
	case "len":
		if o.inner.typ == fields.List {
			return fields.Value{Num: int64(len(v.List))}, true
		}
		return fields.Value{Num: int64(len(v.Str))}, true
	}
	return v, true
}

func appendCase(c *fields.Ctx, s string, upper bool) string {
	return c.Build(func(dst []byte) []byte {
		for i := 0; i < len(s); i++ {
			ch := s[i]
			if upper && 'a' <= ch && ch <= 'z' {
				ch -= 'a' - 'A'
			} else if !upper && 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			dst = append(dst, ch)
		}
		return dst
	})
}

func b64(c *fields.Ctx, s string) (fields.Value, bool) {
	enc := base64.StdEncoding
	if !strings.HasSuffix(s, "=") && len(s)%4 != 0 {
		enc = base64.RawStdEncoding
	}
	ok := true
	out := c.Build(func(dst []byte) []byte {
		n := enc.DecodedLen(len(s))
		start := len(dst)
		for i := 0; i < n; i++ {
			dst = append(dst, 0)
		}
		m, err := enc.Decode(dst[start:], unsafeBytes(s))
		if err != nil {
			ok = false
			return dst[:start]
		}
		return dst[:start+m]
	})
	return fields.Value{Str: out}, ok
}

// compileOperand resolves an operand node against the catalogue.
func (l *loader) compileOperand(o *operandNode) (*operand, error) {
	if o.xform == "" || o.xform == "val" {
		if o.xform == "val" {
			return l.compileOperand(o.inner)
		}
		f, arg, err := l.cat.Resolve(o.field, o.arg, o.hasArg)
		if err != nil {
			return nil, err
		}
		key := o.field
		if o.hasArg {
			key += "[" + o.arg + "]"
		}
		return l.slotted(fieldOperand(f, arg, key, 0)), nil
	}
	in, err := l.compileOperand(o.inner)
	if err != nil {
		return nil, err
	}
	op := &operand{xform: o.xform, inner: in, key: o.xform + "(" + in.key + ")", slot: -1, cache: true}
	defer l.slotted(op)
	switch o.xform {
	case "len":
		if in.typ != fields.String && in.typ != fields.List {
			return nil, fmt.Errorf("len() needs a string or list field, %s is %s", in.key, in.typ)
		}
		op.typ = fields.Int
	default:
		if in.typ != fields.String {
			return nil, fmt.Errorf("%s() needs a string field, %s is %s", o.xform, in.key, in.typ)
		}
		op.typ = fields.String
	}
	return op, nil
}

// slotted gives an operand a per-event value slot shared by every operand
// with the same key.
func (l *loader) slotted(o *operand) *operand {
	if l.slots == nil {
		l.slots = map[string]int{}
	}
	i, ok := l.slots[o.key]
	if !ok {
		i = len(l.slots)
		l.slots[o.key] = i
	}
	o.slot = i
	return o
}

// opsFor lists the operators each field type supports (Falco's
// flt_is_comparable_* rules).
func opAllowed(t fields.Type, op string) bool {
	switch op {
	case "exists":
		return true
	case "=", "==", "!=", "in", "intersects":
		return true
	case "<", "<=", ">", ">=":
		return t == fields.Int || t == fields.Port || t == fields.String
	case "contains", "icontains", "startswith", "endswith", "glob", "iglob", "regex", "bcontains", "bstartswith", "pmatch":
		return t == fields.String
	}
	return false
}

// predInfo is what the per-type prefilters need to know of a check.
type predInfo struct {
	// types is set for an evt.type test: true on the types of typeMask
	// (on the others when typeNeg).
	types    bool
	typeNeg  bool
	typeMask uint64
	// read and match are set for a positive test of a single-valued
	// string operand against constants: the check is
	// "s, ok := read(); ok && match(s)". opKey names the operand.
	read  func(c *scratch, ev *event.Event) (string, bool)
	match func(s string) bool
	opKey string
}

// compileCheck turns a check into a predicate; info, when not nil,
// receives what the prefilters can use of it.
func (l *loader) compileCheck(n *checkNode, info *predInfo) (predFn, string, error) {
	if info == nil {
		info = &predInfo{}
	}
	*info = predInfo{}
	lhs, err := l.compileOperand(n.lhs)
	if err != nil {
		return nil, "", err
	}
	op := n.op
	if op == "==" {
		op = "="
	}
	if !opAllowed(lhs.typ, op) {
		return nil, "", fmt.Errorf("operator %q is not supported on %s (type %s)", n.op, lhs.key, lhs.typ)
	}
	if lhs.typ == fields.List && op != "in" && op != "intersects" && op != "exists" {
		return nil, "", fmt.Errorf("operator %q is not supported on list field %s (use in, intersects or exists)", n.op, lhs.key)
	}
	key := lhs.key + " " + op
	multi := lhs.xform == "" && !lhs.arg.Set && lhs.f.Multi != nil

	if op == "exists" {
		if multi {
			f := lhs.f
			return func(c *scratch, ev *event.Event) bool {
				for i, k := 0, f.Multi(ev); i < k; i++ {
					if _, ok := f.Nth(&c.Ctx, ev, i); ok {
						return true
					}
				}
				return false
			}, key, nil
		}
		return func(c *scratch, ev *event.Event) bool {
			_, ok := lhs.ref(c, ev)
			return ok
		}, key, nil
	}

	if n.rhs != nil {
		rhs, err := l.compileOperand(n.rhs)
		if err != nil {
			return nil, "", err
		}
		key += " val(" + rhs.key + ")"
		cmp, err := dynamicCompare(op, lhs.typ, rhs.typ)
		if err != nil {
			return nil, "", err
		}
		return func(c *scratch, ev *event.Event) bool {
			a, ok := lhs.ref(c, ev)
			if !ok {
				return false
			}
			b, ok := rhs.ref(c, ev)
			if !ok {
				return false
			}
			return cmp(a, b)
		}, key, nil
	}

	// evt.type compiles to a type-set test.
	if lhs.xform == "" && lhs.f.Name == "evt.type" && (op == "=" || op == "!=" || op == "in") {
		var mask uint64
		for _, v := range n.vals {
			if t, ok := event.ParseType(v.text); ok {
				mask |= 1 << t
			}
		}
		var kb strings.Builder // one builder: += per value is quadratic on long lists
		kb.WriteString(key)
		for _, v := range n.vals {
			kb.WriteString(" ")
			kb.WriteString(v.text)
		}
		key = kb.String()
		*info = predInfo{types: true, typeNeg: op == "!=", typeMask: mask}
		if op == "!=" {
			return func(_ *scratch, ev *event.Event) bool { return mask&(1<<ev.Type) == 0 }, key, nil
		}
		return func(_ *scratch, ev *event.Event) bool { return mask&(1<<ev.Type) != 0 }, key, nil
	}

	// "thread.cap_effective contains CAP_X" is a bit test.
	if lhs.xform == "" && lhs.f.CapMask != nil && op == "contains" && len(n.vals) == 1 {
		if bit, ok := fields.CapIndex(n.vals[0].text); ok {
			capMask := lhs.f.CapMask
			return func(_ *scratch, ev *event.Event) bool {
				m, ok := capMask(ev)
				return ok && m&(1<<bit) != 0
			}, key + "\x00" + n.vals[0].text, nil
		}
	}

	vals := make([]string, len(n.vals))
	var kb strings.Builder
	kb.WriteString(key)
	for i, v := range n.vals {
		vals[i] = v.text
		if lhs.f != nil && lhs.xform == "" && lhs.f.Normalize != nil {
			vals[i] = lhs.f.Normalize(v.text)
		}
		kb.WriteByte(0)
		kb.WriteString(vals[i])
	}
	key = kb.String()
	// A single-valued operator given a one-element list keeps working.
	neg := false
	mop := op
	if op == "!=" {
		neg, mop = true, "="
	}
	m, err := constMatcher(mop, lhs.typ, vals)
	if err != nil {
		return nil, "", err
	}
	match := m.val()
	if multi {
		f := lhs.f
		if neg {
			// Every value must differ; no value at all is "missing" (false).
			return func(c *scratch, ev *event.Event) bool {
				k := f.Multi(ev)
				seen := false
				for i := 0; i < k; i++ {
					var ok bool
					if c.tmp, ok = f.Nth(&c.Ctx, ev, i); !ok {
						continue
					}
					seen = true
					if match(&c.tmp) {
						return false
					}
				}
				return seen
			}, key, nil
		}
		return func(c *scratch, ev *event.Event) bool {
			for i, k := 0, f.Multi(ev); i < k; i++ {
				var ok bool
				if c.tmp, ok = f.Nth(&c.Ctx, ev, i); ok && match(&c.tmp) {
					return true
				}
			}
			return false
		}, key, nil
	}
	if !neg && m.str != nil && lhs.typ == fields.String {
		info.read, info.match, info.opKey = strReader(lhs), m.str, lhs.key
	}
	if fn := fastCheck(lhs, m, neg); fn != nil && !l.generic {
		return fn, key, nil
	}
	if neg {
		return func(c *scratch, ev *event.Event) bool {
			v, ok := lhs.ref(c, ev)
			return ok && !match(v)
		}, key, nil
	}
	return func(c *scratch, ev *event.Event) bool {
		v, ok := lhs.ref(c, ev)
		return ok && match(v)
	}, key, nil
}

// baseName is Falco's basename(): the text after the last '/'.
func baseName(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }

// strReader returns a reader of a string operand: the field's typed
// extractor for a cheap field, basename of such a field without a Value,
// the operand's slot otherwise.
func strReader(o *operand) func(c *scratch, ev *event.Event) (string, bool) {
	switch {
	case o.xform == "" && !o.cache && o.f.Str != nil:
		x, a := o.f.Str, o.argp
		return func(c *scratch, ev *event.Event) (string, bool) { return x(&c.Ctx, ev, a) }
	case o.xform == "basename" && o.inner.typ == fields.String:
		in := strReader(o.inner)
		return func(c *scratch, ev *event.Event) (string, bool) {
			s, ok := in(c, ev)
			if !ok {
				return "", false
			}
			return baseName(s), true
		}
	}
	return func(c *scratch, ev *event.Event) (string, bool) {
		p, ok := o.ref(c, ev)
		return p.Str, ok
	}
}

// fastCheck compiles the common shape "field op constants" on a cheap
// string or numeric field to a predicate that extracts the bare string or
// number, with no Value in between (nil when the shape does not fit).
// Cheap fields are extracted again by each check: that costs less than
// caching them.
func fastCheck(lhs *operand, m typedMatch, neg bool) predFn {
	if lhs.xform == "basename" && lhs.inner.typ == fields.String && m.str != nil {
		read, match := strReader(lhs), m.str
		if neg {
			return func(c *scratch, ev *event.Event) bool {
				s, ok := read(c, ev)
				return ok && !match(s)
			}
		}
		return func(c *scratch, ev *event.Event) bool {
			s, ok := read(c, ev)
			return ok && match(s)
		}
	}
	if lhs.xform != "" || lhs.cache {
		return nil
	}
	a := lhs.argp
	switch {
	case m.str != nil && lhs.f.Str != nil:
		x, match := lhs.f.Str, m.str
		if neg {
			return func(c *scratch, ev *event.Event) bool {
				s, ok := x(&c.Ctx, ev, a)
				return ok && !match(s)
			}
		}
		return func(c *scratch, ev *event.Event) bool {
			s, ok := x(&c.Ctx, ev, a)
			return ok && match(s)
		}
	case m.num != nil && lhs.f.Num != nil:
		x, match := lhs.f.Num, m.num
		if neg {
			return func(c *scratch, ev *event.Event) bool {
				n, ok := x(&c.Ctx, ev, a)
				return ok && !match(n)
			}
		}
		return func(c *scratch, ev *event.Event) bool {
			n, ok := x(&c.Ctx, ev, a)
			return ok && match(n)
		}
	}
	return nil
}

// typedMatch is the positive test of a check against constants: on the
// bare string (String fields) or number (Int, Port, Bool), or on the whole
// value (addresses, lists). Exactly one is set.
type typedMatch struct {
	str func(s string) bool
	num func(n int64) bool
	any func(v *fields.Value) bool
}

// val returns the test on a whole value.
func (m typedMatch) val() func(v *fields.Value) bool {
	switch {
	case m.str != nil:
		f := m.str
		return func(v *fields.Value) bool { return f(v.Str) }
	case m.num != nil:
		f := m.num
		return func(v *fields.Value) bool { return f(v.Num) }
	}
	return m.any
}

func parseNum(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 0, 64)
	if err == nil {
		return n, nil
	}
	if f, ferr := strconv.ParseFloat(s, 64); ferr == nil && f == float64(int64(f)) {
		return int64(f), nil
	}
	return 0, fmt.Errorf("%q is not a number", s)
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not true or false", s)
}

func parseNet(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("%q is not an IP network", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// constMatcher builds the positive test for op against constant values.
func constMatcher(op string, t fields.Type, vals []string) (typedMatch, error) {
	single := func() (string, error) {
		if len(vals) != 1 {
			return "", fmt.Errorf("operator %q needs exactly one value", op)
		}
		return vals[0], nil
	}
	switch t {
	case fields.Int, fields.Port, fields.Bool:
		nums := make([]int64, len(vals))
		for i, s := range vals {
			var err error
			if t == fields.Bool {
				var b bool
				b, err = parseBool(s)
				if b {
					nums[i] = 1
				}
			} else {
				nums[i], err = parseNum(s)
			}
			if err != nil {
				return typedMatch{}, err
			}
		}
		if op == "in" || op == "intersects" {
			return typedMatch{num: func(v int64) bool {
				for _, n := range nums {
					if v == n {
						return true
					}
				}
				return false
			}}, nil
		}
		if len(nums) != 1 {
			return typedMatch{}, fmt.Errorf("operator %q needs exactly one value", op)
		}
		n := nums[0]
		switch op {
		case "=":
			return typedMatch{num: func(v int64) bool { return v == n }}, nil
		case "<":
			return typedMatch{num: func(v int64) bool { return v < n }}, nil
		case "<=":
			return typedMatch{num: func(v int64) bool { return v <= n }}, nil
		case ">":
			return typedMatch{num: func(v int64) bool { return v > n }}, nil
		case ">=":
			return typedMatch{num: func(v int64) bool { return v >= n }}, nil
		}
	case fields.IP, fields.Net:
		nets := make([]netip.Prefix, len(vals))
		for i, s := range vals {
			p, err := parseNet(s)
			if err != nil {
				return typedMatch{}, err
			}
			nets[i] = p
		}
		if op != "in" && op != "intersects" && len(nets) != 1 {
			return typedMatch{}, fmt.Errorf("operator %q needs exactly one value", op)
		}
		return typedMatch{any: func(v *fields.Value) bool {
			a := v.IP.Unmap()
			for _, p := range nets {
				if p.Contains(a) {
					return true
				}
			}
			return false
		}}, nil
	case fields.List:
		set := make(map[string]struct{}, len(vals))
		for _, s := range vals {
			set[s] = struct{}{}
		}
		if op == "in" {
			return typedMatch{any: func(v *fields.Value) bool {
				if len(v.List) == 0 {
					return false
				}
				for _, s := range v.List {
					if _, ok := set[s]; !ok {
						return false
					}
				}
				return true
			}}, nil
		}
		return typedMatch{any: func(v *fields.Value) bool {
			for _, s := range v.List {
				if _, ok := set[s]; ok {
					return true
				}
			}
			return false
		}}, nil
	case fields.String:
		switch op {
		case "in", "intersects":
			if len(vals) <= 4 {
				vs := vals
				return typedMatch{str: func(v string) bool {
					for _, s := range vs {
						if v == s {
							return true
						}
					}
					return false
				}}, nil
			}
			set := make(map[string]struct{}, len(vals))
			var sig strSig
			for _, s := range vals {
				set[s] = struct{}{}
				sig.add(s)
			}
			return typedMatch{str: func(v string) bool {
				if !sig.has(v) {
					return false
				}
				_, ok := set[v]
				return ok
			}}, nil
		case "pmatch":
			pm := newPathMatcher(vals)
			return typedMatch{str: func(v string) bool { return pm.match(v) }}, nil
		}
		s, err := single()
		if err != nil {
			return typedMatch{}, err
		}
		switch op {
		case "=":
			return typedMatch{str: func(v string) bool { return v == s }}, nil
		case "<":
			return typedMatch{str: func(v string) bool { return v < s }}, nil
		case "<=":
			return typedMatch{str: func(v string) bool { return v <= s }}, nil
		case ">":
			return typedMatch{str: func(v string) bool { return v > s }}, nil
		case ">=":
			return typedMatch{str: func(v string) bool { return v >= s }}, nil
		case "contains":
			return typedMatch{str: func(v string) bool { return strings.Contains(v, s) }}, nil
		case "icontains":
			ls := strings.ToLower(s)
			return typedMatch{str: func(v string) bool { return containsFold(v, ls) }}, nil
		case "startswith":
			return typedMatch{str: func(v string) bool { return strings.HasPrefix(v, s) }}, nil
		case "endswith":
			return typedMatch{str: func(v string) bool { return strings.HasSuffix(v, s) }}, nil
		case "glob":
			return typedMatch{str: func(v string) bool { return fields.Glob(s, v, false) }}, nil
		case "iglob":
			return typedMatch{str: func(v string) bool { return fields.Glob(s, v, true) }}, nil
		case "regex":
			re, err := regexp.Compile(`^(?:` + s + `)$`)
			if err != nil {
				return typedMatch{}, fmt.Errorf("invalid regex %q: %v", s, err)
			}
			return typedMatch{str: func(v string) bool { return re.MatchString(v) }}, nil
		case "bcontains", "bstartswith":
			b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
			if err != nil || len(b) == 0 {
				return typedMatch{}, fmt.Errorf("%s needs a hex string, got %q", op, s)
			}
			needle := string(b)
			if op == "bcontains" {
				return typedMatch{str: func(v string) bool { return strings.Contains(v, needle) }}, nil
			}
			return typedMatch{str: func(v string) bool { return strings.HasPrefix(v, needle) }}, nil
		}
	}
	return typedMatch{}, fmt.Errorf("operator %q is not supported on type %s", op, t)
}

// strSig is a 256-bit summary of a set of strings (length, first and last
// byte): most values outside the set miss it, which is cheaper to find out
// than hashing them for a map lookup. A value in the set never misses.
type strSig [4]uint64

func sigBit(s string) uint {
	if s == "" {
		return 0
	}
	return (uint(len(s))*7 + uint(s[0])*3 + uint(s[len(s)-1])) & 255
}

func (g *strSig) add(s string)      { b := sigBit(s); g[b>>6] |= 1 << (b & 63) }
func (g *strSig) has(s string) bool { b := sigBit(s); return g[b>>6]&(1<<(b&63)) != 0 }

// textIP parses an address held as text. The usual text is none (an unset
// variable): that is answered before ParseAddr, whose error allocates.
func textIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(s)
	return ip, err == nil
}

// textNum parses a decimal number held as text. The usual text is none or
// not a number: that is answered before ParseInt, whose error allocates.
func textNum(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && !(i == 0 && (c == '-' || c == '+') && len(s) > 1) {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// dynamicCompare compares two field values (val() or transformers on the
// right side).
func dynamicCompare(op string, a, b fields.Type) (func(x, y *fields.Value) bool, error) {
	num := func(t fields.Type) bool { return t == fields.Int || t == fields.Port || t == fields.Bool }
	switch {
	case num(a) && num(b):
		switch op {
		case "=", "in", "intersects":
			return func(x, y *fields.Value) bool { return x.Num == y.Num }, nil
		case "!=":
			return func(x, y *fields.Value) bool { return x.Num != y.Num }, nil
		case "<":
			return func(x, y *fields.Value) bool { return x.Num < y.Num }, nil
		case "<=":
			return func(x, y *fields.Value) bool { return x.Num <= y.Num }, nil
		case ">":
			return func(x, y *fields.Value) bool { return x.Num > y.Num }, nil
		case ">=":
			return func(x, y *fields.Value) bool { return x.Num >= y.Num }, nil
		}
	case a == fields.String && b == fields.String:
		switch op {
		case "=", "in", "intersects":
			return func(x, y *fields.Value) bool { return x.Str == y.Str }, nil
		case "!=":
			return func(x, y *fields.Value) bool { return x.Str != y.Str }, nil
		case "<":
			return func(x, y *fields.Value) bool { return x.Str < y.Str }, nil
		case "<=":
			return func(x, y *fields.Value) bool { return x.Str <= y.Str }, nil
		case ">":
			return func(x, y *fields.Value) bool { return x.Str > y.Str }, nil
		case ">=":
			return func(x, y *fields.Value) bool { return x.Str >= y.Str }, nil
		case "contains":
			return func(x, y *fields.Value) bool { return strings.Contains(x.Str, y.Str) }, nil
		case "icontains":
			return func(x, y *fields.Value) bool { return containsFoldBoth(x.Str, y.Str) }, nil
		case "startswith":
			return func(x, y *fields.Value) bool { return strings.HasPrefix(x.Str, y.Str) }, nil
		case "endswith":
			return func(x, y *fields.Value) bool { return strings.HasSuffix(x.Str, y.Str) }, nil
		case "glob":
			return func(x, y *fields.Value) bool { return fields.Glob(y.Str, x.Str, false) }, nil
		case "iglob":
			return func(x, y *fields.Value) bool { return fields.Glob(y.Str, x.Str, true) }, nil
		}
	case (a == fields.IP || a == fields.Net) && (b == fields.IP || b == fields.Net):
		switch op {
		case "=", "in", "intersects":
			return func(x, y *fields.Value) bool { return x.IP.Unmap() == y.IP.Unmap() }, nil
		case "!=":
			return func(x, y *fields.Value) bool { return x.IP.Unmap() != y.IP.Unmap() }, nil
		}
	// An address or port held as text (fd.sip = val(proc.env[KUBERNETES_SERVICE_HOST]))
	// is parsed per event; text that is not one compares false, like a missing value.
	case a == fields.IP && b == fields.String:
		switch op {
		case "=", "in", "intersects":
			return func(x, y *fields.Value) bool {
				ip, ok := textIP(y.Str)
				return ok && x.IP.Unmap() == ip.Unmap()
			}, nil
		case "!=":
			return func(x, y *fields.Value) bool {
				ip, ok := textIP(y.Str)
				return ok && x.IP.Unmap() != ip.Unmap()
			}, nil
		}
	case num(a) && b == fields.String:
		switch op {
		case "=", "in", "intersects":
			return func(x, y *fields.Value) bool {
				n, ok := textNum(y.Str)
				return ok && x.Num == n
			}, nil
		case "!=":
			return func(x, y *fields.Value) bool {
				n, ok := textNum(y.Str)
				return ok && x.Num != n
			}, nil
		}
	}
	return nil, fmt.Errorf("operator %q cannot compare a %s field with a %s field", op, a, b)
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// containsFold is an ASCII case-insensitive strings.Contains; needle is
// already lower case.
func containsFold(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerByte(s[i+j]) == needle[j] {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

func containsFoldBoth(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n && lowerByte(s[i+j]) == lowerByte(needle[j]) {
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// pathMatcher implements pmatch: a value matches a pattern when the
// pattern's path components match the value's leading components (so
// /var/run matches /var/run and /var/run/x but not /var/run_x). Wildcards
// in a pattern match within one component.
type pathMatcher struct {
	plain []string   // patterns without wildcards, trailing '/' removed
	globs [][]string // component lists of wildcard patterns
}

func newPathMatcher(pats []string) *pathMatcher {
	pm := &pathMatcher{}
	for _, p := range pats {
		if strings.ContainsAny(p, "*?[") {
			pm.globs = append(pm.globs, strings.Split(strings.TrimRight(p, "/"), "/"))
			continue
		}
		if len(p) > 1 {
			p = strings.TrimRight(p, "/")
		}
		pm.plain = append(pm.plain, p)
	}
	return pm
}

func (pm *pathMatcher) match(v string) bool {
	for _, p := range pm.plain {
		if p == "/" {
			if strings.HasPrefix(v, "/") {
				return true
			}
			continue
		}
		if strings.HasPrefix(v, p) && (len(v) == len(p) || v[len(p)] == '/') {
			return true
		}
	}
	for _, comps := range pm.globs {
		rest := v
		ok := true
		for i, c := range comps {
			var head string
			j := strings.IndexByte(rest, '/')
			if j < 0 {
				head, rest = rest, ""
				if i != len(comps)-1 {
					ok = false
					break
				}
			} else {
				head, rest = rest[:j], rest[j+1:]
			}
			if !fields.Glob(c, head, false) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
