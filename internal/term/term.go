// Package term makes untrusted text safe to print on a terminal. Event data
// (process names, paths, command lines) is attacker-controlled: a process can
// be named "\x1b[2J" to clear an analyst's screen or forge lines.
package term

import (
	"strings"
	"unicode/utf8"
)

const hex = "0123456789abcdef"

// Escape returns s with control characters (C0, DEL, C1), invalid UTF-8 and
// backslashes written as visible escapes (\n, \t, \x1b, \u009b, \\). Printable
// text, including non-ASCII, is kept.
func Escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&0xf])
		case r >= 0x80 && r < 0xa0, r == 0x2028, r == 0x2029, r == 0x202e, r == 0x2066, r == 0x2067, r == 0x2068, r == 0x2069:
			// C1 controls (0x9b is a one-byte CSI), line separators and bidi overrides.
			b.WriteString(`\u`)
			for sh := 12; sh >= 0; sh -= 4 {
				b.WriteByte(hex[(r>>sh)&0xf])
			}
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		// Non-ASCII takes the slow path, which decides per rune.
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}
