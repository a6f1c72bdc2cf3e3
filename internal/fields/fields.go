package fields

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/tripline/tripline/internal/event"
)

// Sentinel errors returned by Resolve.
var (
	ErrUnknownField = errors.New("fields: unknown field")
	ErrBadArg       = errors.New("fields: bad field argument")
)

// Type is the value type of a field, as the rules engine compares it.
type Type uint8

// Field types.
const (
	String Type = iota + 1 // text (Falco CHARBUF)
	Int                    // signed integer: numbers of every width, times
	Port                   // TCP/UDP port, compared numerically
	Bool                   // true/false
	IP                     // an IP address; "a/n" on the right tests membership
	Net                    // filter-only IP network match (fd.net): right side is a CIDR or an address
	List                   // list of strings (container.capabilities)
)

var typeNames = [...]string{"invalid", "string", "int", "port", "bool", "ipaddr", "ipnet", "list"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// Numeric reports whether values of t compare as numbers.
func (t Type) Numeric() bool { return t == Int || t == Port }

// ArgKind says whether and how a field takes an argument (field[arg] or field.arg).
type ArgKind uint8

// Argument kinds.
const (
	ArgNone       ArgKind = iota // no argument
	ArgIndex                     // a non-negative integer: proc.aname[2]
	ArgKey                       // any text: container.label[app], evt.arg.flags
	ArgIndexOrKey                // either: container.mount.dest[0] or container.mount.dest[/var/run/docker.sock]
)

// Arg is a parsed field argument.
type Arg struct {
	Text    string // as written
	Index   int    // when IsIndex
	IsIndex bool
	Set     bool // an argument was given
}

// Value holds one extracted value; which member is meaningful depends on the
// field's Type (Num holds Int, Port and Bool as 0/1).
type Value struct {
	Str  string
	Num  int64
	IP   netip.Addr
	List []string
}

// Ctx is per-goroutine scratch space for extractors that build strings (for
// example proc.cmdline). Strings returned by an extractor may live in the
// Ctx buffer: they are valid until the next Reset.
type Ctx struct {
	buf []byte
}

// Reset invalidates every string previously built in c.
func (c *Ctx) Reset() { c.buf = c.buf[:0] }

// begin returns the offset where a new string starts.
func (c *Ctx) begin() int { return len(c.buf) }

// end returns the string built since begin. A later append may move the
// buffer, but the bytes an earlier string points to are never overwritten
// before Reset, so the string stays intact.
func (c *Ctx) end(start int) string {
	n := len(c.buf) - start
	if n == 0 {
		return ""
	}
	return unsafe.String(&c.buf[start], n)
}

// Extractor reads one value of a field from an event. ok is false when the
// value is not available (Falco's <NA>).
type Extractor func(c *Ctx, ev *event.Event, a *Arg) (v Value, ok bool)

// Field describes one filter/output field.
type Field struct {
	Name        string
	Type        Type
	Arg         ArgKind
	ArgRequired bool
	DotArg      bool // the argument may be written as a dotted suffix: evt.arg.flags
	Desc        string
	// Classes lists the event classes for which the sensor supplies the
	// field; empty means the field is known (rules using it load) but the
	// sensor never has a value for it, so it always reads as <NA>.
	Classes []event.Class
	// FilterOnly fields cannot appear in outputs (fd.net).
	FilterOnly bool
	// CapMask, for capability-set fields, returns the raw mask so that
	// "contains CAP_X" compiles to a bit test.
	CapMask func(ev *event.Event) (uint64, bool)
	// TimeJSON fields print as text but appear in output_fields as the
	// event timestamp in ns, as Falco's evt.time does.
	TimeJSON bool
	// Multi, when set, is the "any of several values" form used in filters
	// when no argument is given: proc.aname matches if any ancestor matches,
	// fd.ip if the client or server address matches. It returns the count;
	// Nth extracts value i.
	Multi func(ev *event.Event) int
	Nth   func(c *Ctx, ev *event.Event, i int) (Value, bool)
	// Normalize rewrites a constant on the right side of a comparison
	// (container.capabilities accepts "sys_admin" for "CAP_SYS_ADMIN").
	Normalize func(string) string

	Extract Extractor
	// Str and Num, when set, return what Extract returns in Value.Str
	// (String fields) or Value.Num (Int, Port and Bool fields) without
	// building a Value: the rules engine's per-check fast path.
	Str func(c *Ctx, ev *event.Event, a *Arg) (string, bool)
	Num func(c *Ctx, ev *event.Event, a *Arg) (int64, bool)
	// Redact, for fields that may carry environment values (proc.env,
	// proc.aenv, evt.arg.env), extracts the value as alert outputs show it:
	// values of the variables r hides replaced by Redacted.
	Redact func(c *Ctx, ev *event.Event, a *Arg, r *Redactor) (Value, bool)
	mask   uint32
}

// Supplied reports whether the sensor supplies f for events of class c.
func (f *Field) Supplied(c event.Class) bool { return f.mask&(1<<c) != 0 }

// Catalogue is the set of known fields.
type Catalogue struct {
	byName map[string]*Field
	sorted []*Field
}

// Default returns the catalogue of every field the sensor knows. It is built
// once and immutable, so it is shared by every caller.
func Default() *Catalogue { return defaultCatalogue() }

var defaultCatalogue = sync.OnceValue(build)

func build() *Catalogue {
	c := &Catalogue{byName: make(map[string]*Field)}
	for _, f := range catalogue() {
		for _, cl := range f.Classes {
			f.mask |= 1 << cl
		}
		c.byName[f.Name] = f
		c.sorted = append(c.sorted, f)
	}
	sort.Slice(c.sorted, func(i, j int) bool { return c.sorted[i].Name < c.sorted[j].Name })
	return c
}

// Lookup returns the field with exactly this name.
func (c *Catalogue) Lookup(name string) (*Field, bool) {
	f, ok := c.byName[name]
	return f, ok
}

// All returns every field sorted by name.
func (c *Catalogue) All() []*Field { return c.sorted }

// Lookup finds a field of the default catalogue by exact name.
func Lookup(name string) (*Field, bool) { return Default().Lookup(name) }

// Resolve finds the field for name as written in a condition or output
// (possibly with a dotted-suffix argument like evt.arg.flags) and parses its
// argument. bracket is the text between [ ] when hasBracket.
func (c *Catalogue) Resolve(name, bracket string, hasBracket bool) (*Field, Arg, error) {
	f, ok := c.byName[name]
	var arg Arg
	if !ok {
		// Dotted-suffix argument: the longest known prefix that accepts it.
		for i := strings.LastIndexByte(name, '.'); i > 0; i = strings.LastIndexByte(name[:i], '.') {
			if g, ok2 := c.byName[name[:i]]; ok2 && g.DotArg && !hasBracket {
				f, ok = g, true
				arg = Arg{Text: name[i+1:], Set: true}
				break
			}
		}
		if !ok {
			return nil, Arg{}, fmt.Errorf("%w %q", ErrUnknownField, name)
		}
	} else if hasBracket {
		arg = Arg{Text: bracket, Set: true}
	}
	if arg.Set {
		switch f.Arg {
		case ArgNone:
			return nil, Arg{}, fmt.Errorf("%w: field %q takes no argument", ErrBadArg, f.Name)
		case ArgIndex, ArgIndexOrKey:
			n, err := strconv.Atoi(arg.Text)
			if err == nil && n >= 0 && n < 1<<20 {
				arg.Index, arg.IsIndex = n, true
			} else if f.Arg == ArgIndex {
				return nil, Arg{}, fmt.Errorf("%w: field %q needs a numeric index, got %q", ErrBadArg, f.Name, arg.Text)
			}
		}
		if arg.Text == "" {
			return nil, Arg{}, fmt.Errorf("%w: field %q has an empty argument", ErrBadArg, f.Name)
		}
	} else if f.ArgRequired {
		return nil, Arg{}, fmt.Errorf("%w: field %q requires an argument", ErrBadArg, f.Name)
	}
	return f, arg, nil
}

// AppendValue renders v as Falco prints it in an output string.
func AppendValue(dst []byte, t Type, v Value) []byte {
	switch t {
	case Int, Port:
		return strconv.AppendInt(dst, v.Num, 10)
	case Bool:
		return strconv.AppendBool(dst, v.Num != 0)
	case IP, Net:
		if !v.IP.IsValid() {
			return append(dst, "<NA>"...)
		}
		return v.IP.AppendTo(dst)
	case List:
		dst = append(dst, '(')
		for i, s := range v.List {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, s...)
		}
		return append(dst, ')')
	}
	return append(dst, v.Str...)
}

// JSON returns v as Falco types it in output_fields: numbers as int64, bools
// as bool, lists as []string, everything else as a string the caller owns.
func JSON(t Type, v Value) any {
	switch t {
	case Int, Port:
		return v.Num
	case Bool:
		return v.Num != 0
	case IP, Net:
		if !v.IP.IsValid() {
			return nil
		}
		return v.IP.String()
	case List:
		out := make([]string, len(v.List))
		for i, s := range v.List {
			out[i] = strings.Clone(s)
		}
		return out
	}
	return strings.Clone(v.Str)
}

// Build appends to c's scratch buffer with fn and returns the appended bytes
// as a string valid until Reset.
func (c *Ctx) Build(fn func(dst []byte) []byte) string {
	start := len(c.buf)
	c.buf = fn(c.buf)
	if len(c.buf) < start {
		c.buf = c.buf[:start]
	}
	return c.end(start)
}
