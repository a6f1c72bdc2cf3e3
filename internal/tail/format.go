package tail

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/tripline/tripline/internal/alert"
)

// Filter selects alerts. Empty fields match everything.
type Filter struct {
	// MinPriority is the least severe priority shown (e.g. "warning").
	MinPriority string
	// Rule is a case-insensitive glob on the rule name ('*', '?').
	Rule string
	// Container matches output_fields container.name exactly or a prefix
	// (at least 3 characters) of container.id.
	Container string
	// Host is a case-insensitive glob on the hostname.
	Host string
}

type matcher struct {
	hasMin    bool
	min       alert.Priority
	rule      *regexp.Regexp
	host      *regexp.Regexp
	container string
}

func globRE(g string) *regexp.Regexp {
	if g == "" {
		return nil
	}
	q := regexp.QuoteMeta(g)
	q = strings.ReplaceAll(q, `\*`, `.*`)
	q = strings.ReplaceAll(q, `\?`, `.`)
	return regexp.MustCompile(`(?is)^` + q + `$`)
}

func (f Filter) compile() (*matcher, error) {
	m := &matcher{rule: globRE(f.Rule), host: globRE(f.Host), container: f.Container}
	if f.MinPriority != "" {
		p, err := alert.ParsePriority(f.MinPriority)
		if err != nil {
			return nil, fmt.Errorf("tail: --priority: %w", err)
		}
		m.hasMin, m.min = true, p
	}
	return m, nil
}

func (m *matcher) match(a *alert.Alert) bool {
	if m.hasMin && !a.Priority.AtLeast(m.min) {
		return false
	}
	if m.rule != nil && !m.rule.MatchString(a.Rule) {
		return false
	}
	if m.host != nil && !m.host.MatchString(a.Hostname) {
		return false
	}
	if m.container != "" {
		name, _ := a.OutputFields["container.name"].(string)
		id, _ := a.OutputFields["container.id"].(string)
		if name != m.container && !(id == m.container || len(m.container) >= 3 && strings.HasPrefix(id, m.container)) {
			return false
		}
	}
	return true
}

// ANSI colors per priority.
var colors = [...]string{
	alert.PriorityEmergency:     "\x1b[1;97;41m",
	alert.PriorityAlert:         "\x1b[1;91m",
	alert.PriorityCritical:      "\x1b[1;91m",
	alert.PriorityError:         "\x1b[91m",
	alert.PriorityWarning:       "\x1b[93m",
	alert.PriorityNotice:        "\x1b[96m",
	alert.PriorityInformational: "\x1b[92m",
	alert.PriorityDebug:         "\x1b[2m",
}

const (
	reset = "\x1b[0m"
	bold  = "\x1b[1m"
	dim   = "\x1b[2m"
)

// AppendLine renders a as one line:
// "<time UTC> <Priority> <rule> [<container>] <output>\n", colored when
// color is set. All data is escaped (see AppendEscaped).
func AppendLine(dst []byte, a *alert.Alert, color bool) []byte {
	if color {
		dst = append(dst, dim...)
	}
	dst = a.Time.UTC().AppendFormat(dst, "2006-01-02 15:04:05.000")
	if color {
		dst = append(dst, reset...)
	}
	dst = append(dst, ' ')
	if color && a.Priority.Valid() {
		dst = append(dst, colors[a.Priority]...)
	}
	name := a.Priority.String()
	dst = AppendEscaped(dst, name)
	if color {
		dst = append(dst, reset...)
	}
	for i := len(name); i < len("Informational"); i++ {
		dst = append(dst, ' ')
	}
	dst = append(dst, ' ')
	if color {
		dst = append(dst, bold...)
	}
	dst = AppendEscaped(dst, a.Rule)
	if color {
		dst = append(dst, reset...)
	}
	dst = append(dst, " ["...)
	dst = AppendEscaped(dst, containerOf(a))
	dst = append(dst, "] "...)
	dst = AppendEscaped(dst, a.Output)
	return append(dst, '\n')
}

func containerOf(a *alert.Alert) string {
	if a.Source == alert.SourceInternal {
		return "internal"
	}
	if n, ok := a.OutputFields["container.name"].(string); ok && n != "" {
		return n
	}
	if id, ok := a.OutputFields["container.id"].(string); ok && id != "" {
		return id
	}
	return "-"
}

// AppendEscaped appends s with everything a terminal could interpret made
// visible: C0/C1 controls and DEL as \xNN (ESC is \x1b), bidi and other
// invisible format characters as \u{NNNN}, invalid UTF-8 bytes as \xNN,
// and backslashes doubled so escapes cannot be forged.
func AppendEscaped(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f {
			if c == '\\' {
				dst = append(dst, '\\')
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c < 0x20 || c == 0x7f || (r == utf8.RuneError && size == 1):
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
			i++
			continue
		case dangerousRune(r):
			dst = fmt.Appendf(dst, `\u{%04x}`, r)
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// dangerousRune reports C1 controls and invisible formatting characters
// (bidi overrides, zero-width characters) that can disguise terminal output.
func dangerousRune(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f:
		return true
	case r >= 0x200b && r <= 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2060 && r <= 0x2069, r == 0xfeff:
		return true
	case r == 0x2028 || r == 0x2029:
		return true
	}
	return false
}

// appendJSONLine compacts raw JSON to one line and \u-escapes the runes
// AppendEscaped would flag (they can only occur inside JSON strings).
func appendJSONLine(dst []byte, raw []byte) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(raw); {
		c := raw[i]
		if c < utf8.RuneSelf {
			if c != '\n' && c != '\r' {
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(raw[i:])
		if dangerousRune(r) || (r == utf8.RuneError && size == 1) {
			if r == utf8.RuneError {
				r = 0xfffd
			}
			dst = append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		} else {
			dst = append(dst, raw[i:i+size]...)
		}
		i += size
	}
	return append(dst, '\n')
}
