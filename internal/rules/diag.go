package rules

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors.
var (
	ErrLoad     = errors.New("rules: load failed")
	ErrPriority = errors.New("rules: invalid priority")
	ErrRead     = errors.New("rules: cannot read")
	ErrTooLarge = errors.New("rules: file too large")
)

// Diag is one error or warning of a load, located in a rules file.
type Diag struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Col     int    `json:"col"`
	Item    string `json:"item"` // e.g. `rule "Terminal shell"`, `macro "container"`, `list "shell_binaries"`
	Message string `json:"message"`
	// Snippet is the condition line the error points into and Caret the
	// byte column under which to print '^' (both empty when not a
	// condition error).
	Snippet string `json:"snippet,omitempty"`
	Caret   int    `json:"-"`
}

// Error formats "file:line:col: item: message" followed, for condition
// errors, by the condition and a caret under the position.
func (d Diag) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: ", d.File, d.Line, d.Col)
	if d.Item != "" {
		b.WriteString(d.Item)
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	if d.Snippet != "" {
		b.WriteString("\n    ")
		b.WriteString(d.Snippet)
		b.WriteString("\n    ")
		b.WriteString(strings.Repeat(" ", d.Caret))
		b.WriteString("^")
	}
	return b.String()
}

// Skip records a rule that loaded but will never be evaluated.
type Skip struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Report is the outcome of a load: every error and warning, skipped rules
// and counts. Compiled counts enabled rules that compiled; Disabled counts
// compiled rules that are disabled.
type Report struct {
	Errors   []Diag
	Warnings []Diag
	Skipped  []Skip
	Compiled int
	Disabled int
}

// Err returns nil when the report has no errors, else an error wrapping
// ErrLoad that lists them all.
func (r *Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d error(s):", len(r.Errors))
	for _, d := range r.Errors {
		b.WriteString("\n")
		b.WriteString(d.Error())
	}
	return fmt.Errorf("%w: %s", ErrLoad, b.String())
}

// snippet returns the line of text containing off (clipped to a window) and
// the caret column within it.
func snippet(text string, off int) (string, int) {
	if off < 0 {
		off = 0
	}
	if off > len(text) {
		off = len(text)
	}
	start := strings.LastIndexByte(text[:off], '\n') + 1
	end := strings.IndexByte(text[off:], '\n')
	if end < 0 {
		end = len(text)
	} else {
		end += off
	}
	const window = 60
	lo, hi := start, end
	prefix, suffix := "", ""
	if off-lo > window {
		lo = off - window
		prefix = "..."
	}
	if hi-off > window {
		hi = off + window
		suffix = "..."
	}
	line := sanitize(text[lo:hi])
	return prefix + line + suffix, len(prefix) + len(sanitize(text[lo:off]))
}

// sanitize replaces control characters so a snippet prints on one line and
// cannot drive a terminal.
func sanitize(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			b.WriteByte(' ')
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
