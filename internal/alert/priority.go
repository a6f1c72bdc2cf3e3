package alert

import (
	"fmt"
	"strings"
)

// Priority is a Falco alert priority. Smaller is more severe.
type Priority int8

// Falco priorities, in Falco's numbering.
const (
	PriorityEmergency Priority = iota
	PriorityAlert
	PriorityCritical
	PriorityError
	PriorityWarning
	PriorityNotice
	PriorityInformational
	PriorityDebug
)

var priorityNames = [...]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

// lowerNames are the subject-token forms, precomputed so templating does not allocate.
var lowerNames = [...]string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

// String returns Falco's long name ("Informational", not "INFO").
func (p Priority) String() string {
	if p.Valid() {
		return priorityNames[p]
	}
	return fmt.Sprintf("Priority(%d)", int(p))
}

// Lower returns the lower-case long name used in NATS subjects.
func (p Priority) Lower() string {
	if p.Valid() {
		return lowerNames[p]
	}
	return "unknown"
}

// Valid reports whether p is one of the eight Falco priorities.
func (p Priority) Valid() bool { return p >= PriorityEmergency && p <= PriorityDebug }

// AtLeast reports whether p is as severe as min or more.
func (p Priority) AtLeast(min Priority) bool { return p <= min }

// ParsePriority accepts Falco's long names and the rule-file spellings
// (EMERGENCY … DEBUG, INFO), case-insensitively.
func ParsePriority(s string) (Priority, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "emergency", "emerg":
		return PriorityEmergency, nil
	case "alert":
		return PriorityAlert, nil
	case "critical", "crit":
		return PriorityCritical, nil
	case "error", "err":
		return PriorityError, nil
	case "warning", "warn":
		return PriorityWarning, nil
	case "notice":
		return PriorityNotice, nil
	case "informational", "info":
		return PriorityInformational, nil
	case "debug":
		return PriorityDebug, nil
	}
	return 0, fmt.Errorf("%w: %q", ErrPriority, s)
}

// MarshalText implements encoding.TextMarshaler with the long name.
func (p Priority) MarshalText() ([]byte, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrPriority, int(p))
	}
	return []byte(priorityNames[p]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Priority) UnmarshalText(b []byte) error {
	v, err := ParsePriority(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}
