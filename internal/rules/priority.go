package rules

import (
	"fmt"
	"strings"
)

// Priority is a rule's severity. The constants follow Falco's order
// (Emergency most severe); the zero value means "unset" so that a zero
// Options.MinPriority loads every rule. Syslog returns Falco's (syslog)
// number 0..7.
type Priority int

// Priorities, most severe first.
const (
	Emergency Priority = iota + 1
	Alert
	Critical
	Error
	Warning
	Notice
	Informational
	Debug
)

var priorityNames = [...]string{"", "Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// String returns Falco's long name ("Warning").
func (p Priority) String() string {
	if p >= Emergency && p <= Debug {
		return priorityNames[p]
	}
	return "Debug"
}

// Syslog returns the syslog level Falco uses for p (Emergency=0 ... Debug=7).
func (p Priority) Syslog() int {
	if p >= Emergency && p <= Debug {
		return int(p) - 1
	}
	return 7
}

// MarshalText makes priorities print as names in JSON.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ParsePriority parses a priority case-insensitively: Falco's eight levels
// (and "info"), plus the product aliases HIGH (Error), MEDIUM (Warning) and
// LOW (Notice), for which alias is true so the loader can warn.
func ParsePriority(s string) (p Priority, alias bool, err error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "emergency":
		return Emergency, false, nil
	case "alert":
		return Alert, false, nil
	case "critical":
		return Critical, false, nil
	case "error":
		return Error, false, nil
	case "warning":
		return Warning, false, nil
	case "notice":
		return Notice, false, nil
	case "informational", "info":
		return Informational, false, nil
	case "debug":
		return Debug, false, nil
	case "high":
		return Error, true, nil
	case "medium":
		return Warning, true, nil
	case "low":
		return Notice, true, nil
	}
	return 0, false, fmt.Errorf("%w %q (want one of emergency, alert, critical, error, warning, notice, informational, debug)", ErrPriority, s)
}
