package alert

import (
	"fmt"
	"strings"
)

// DefaultSubjectTemplate is the NATS subject template used when none is
// configured; like falcosidekick's "falco.<priority>.<rule>" under our prefix.
const DefaultSubjectTemplate = "tripline.alerts.<priority>.<rule>"

// Subject is a compiled NATS subject template. Tokens: <hostname>,
// <priority> (lower-case long name), <rule>, <source>. Values from alerts
// are slugged (see Slug), so data can never add tokens, spaces or wildcards.
type Subject struct {
	tmpl  string
	parts []part
}

type part struct {
	lit string
	tok tokenKind
}

type tokenKind uint8

const (
	tokLiteral tokenKind = iota
	tokHostname
	tokPriority
	tokRule
	tokSource
)

var tokens = map[string]tokenKind{
	"<hostname>": tokHostname, "<priority>": tokPriority, "<rule>": tokRule, "<source>": tokSource,
}

// ParseSubject compiles and validates a subject template ("" means
// DefaultSubjectTemplate).
func ParseSubject(tmpl string) (*Subject, error) {
	if tmpl == "" {
		tmpl = DefaultSubjectTemplate
	}
	if len(tmpl) > 200 {
		return nil, fmt.Errorf("%w: longer than 200 bytes", ErrSubject)
	}
	s := &Subject{tmpl: tmpl}
	placeholders := 0
	for i, tok := range strings.Split(tmpl, ".") {
		if tok == "" {
			return nil, fmt.Errorf("%w: %q: empty token %d", ErrSubject, tmpl, i+1)
		}
		for tok != "" {
			lt := strings.IndexByte(tok, '<')
			if lt < 0 {
				lt = len(tok)
			}
			if lt > 0 {
				lit := tok[:lt]
				for _, c := range []byte(lit) {
					if !literalByte(c) {
						return nil, fmt.Errorf("%w: %q: character %q not allowed (letters, digits, '_', '-')", ErrSubject, tmpl, c)
					}
				}
				s.parts = append(s.parts, part{lit: lit})
				tok = tok[lt:]
				continue
			}
			gt := strings.IndexByte(tok, '>')
			if gt < 0 {
				return nil, fmt.Errorf("%w: %q: unterminated placeholder", ErrSubject, tmpl)
			}
			kind, ok := tokens[tok[:gt+1]]
			if !ok {
				return nil, fmt.Errorf("%w: %q: unknown placeholder %s (want <hostname>, <priority>, <rule> or <source>)", ErrSubject, tmpl, tok[:gt+1])
			}
			if placeholders++; placeholders > maxPlaceholders {
				return nil, fmt.Errorf("%w: %q: more than %d placeholders", ErrSubject, tmpl, maxPlaceholders)
			}
			s.parts = append(s.parts, part{tok: kind})
			tok = tok[gt+1:]
		}
		s.parts = append(s.parts, part{lit: "."})
	}
	s.parts = s.parts[:len(s.parts)-1] // trailing separator
	return s, nil
}

func literalByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// String returns the template text.
func (s *Subject) String() string { return s.tmpl }

// Append appends the subject for a.
func (s *Subject) Append(dst []byte, a *Alert) []byte {
	for _, p := range s.parts {
		switch p.tok {
		case tokLiteral:
			dst = append(dst, p.lit...)
		case tokPriority:
			dst = append(dst, a.Priority.Lower()...)
		case tokRule:
			dst = AppendSlug(dst, a.Rule)
		case tokHostname:
			dst = AppendSlug(dst, a.Hostname)
		case tokSource:
			src := a.Source
			if src == "" {
				src = SourceSyscall
			}
			dst = AppendSlug(dst, src)
		}
	}
	return dst
}

// For returns the subject for a.
func (s *Subject) For(a *Alert) string { return string(s.Append(nil, a)) }

// Prefix returns the literal leading tokens of the template ("tripline.alerts"
// for the default); a stream capturing Prefix()+".>" receives every alert.
// It is empty when the template starts with a placeholder.
func (s *Subject) Prefix() string {
	var b strings.Builder
	for _, p := range s.parts {
		if p.tok != tokLiteral {
			break
		}
		b.WriteString(p.lit)
	}
	lit := b.String()
	if i := strings.LastIndexByte(lit, '.'); i >= 0 {
		return lit[:i]
	}
	return "" // the first token is (partly) a placeholder
}

// Bounds that keep every subject well under NATS's 4 KiB control line.
const (
	maxPlaceholders = 8
	maxSlug         = 128
	maxSubject      = 200 + maxPlaceholders*maxSlug
)

// Slug returns s the way falcosidekick slugs rule names in subjects:
// lower-cased, every run of characters outside [a-z0-9] replaced by one
// '_', leading and trailing '_' trimmed. An empty result becomes "unknown"
// so that a subject never has an empty token; results are cut at 128 bytes.
func Slug(s string) string { return string(AppendSlug(nil, s)) }

// AppendSlug appends Slug(s) to dst.
func AppendSlug(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 { // rare: match strings.ToLower's Unicode folding (e.g. KELVIN SIGN → k)
			s = strings.ToLower(s)
			break
		}
	}
	start := len(dst)
	gap := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			if len(dst)-start >= maxSlug-1 {
				break
			}
			if gap && len(dst) > start {
				dst = append(dst, '_')
			}
			gap = false
			dst = append(dst, c)
			continue
		}
		gap = true
	}
	if len(dst) == start {
		dst = append(dst, "unknown"...)
	}
	return dst
}

// ValidSubject reports whether subj is a valid NATS publish subject: non-empty
// dot-separated tokens of printable ASCII without spaces or wildcards.
func ValidSubject(subj string) bool {
	if subj == "" || len(subj) > maxSubject {
		return false
	}
	for _, tok := range strings.Split(subj, ".") {
		if tok == "" || tok == "*" || tok == ">" {
			return false
		}
		for _, c := range []byte(tok) {
			if c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				return false
			}
		}
	}
	return true
}
