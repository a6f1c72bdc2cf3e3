package alert

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tripline/tripline/internal/jsonenc"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Sources written to the "source" key.
const (
	SourceSyscall  = "syscall"
	SourceInternal = "internal"
)

// Errors.
var (
	ErrPriority = errors.New("alert: unknown priority")
	ErrDecode   = errors.New("alert: malformed alert JSON")
	ErrSubject  = errors.New("alert: invalid subject template")
)

// Alert is one rule match (or one internal notice) as delivered to outputs.
type Alert struct {
	Time     time.Time
	Rule     string
	Priority Priority
	Source   string
	// Output is the rendered rule output without the "<time>: <Priority> "
	// prefix that the JSON "output" key carries.
	Output string
	// OutputFields holds one typed value per %field of the rule output
	// (nil for <NA>). evt.time is added on encoding when absent.
	OutputFields map[string]any
	Hostname     string
	Tags         []string
	UUID         string
}

var hostname = sync.OnceValue(func() string {
	if h := os.Getenv("TRIPLINE_HOSTNAME"); h != "" {
		return h
	}
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
})

// Hostname is the host name stamped on alerts: $TRIPLINE_HOSTNAME, else
// the kernel's host name (like Falco's FALCO_HOSTNAME / gethostname).
func Hostname() string { return hostname() }

// NewUUID returns a fresh time-ordered (v7) UUID string.
func NewUUID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// New returns a syscall-source alert with a fresh UUID and this host's name.
func New(t time.Time, rule string, p Priority, output string, fields map[string]any, tags []string) *Alert {
	return &Alert{
		Time: t.UTC(), Rule: rule, Priority: p, Source: SourceSyscall,
		Output: output, OutputFields: fields, Hostname: Hostname(),
		Tags: tags, UUID: NewUUID(),
	}
}

// Internal returns a source=internal alert stamped now, for Tripline's own
// notices (lost kernel events, enrichment outages, spool pressure), in the
// spirit of Falco's "Falco internal: syscall event drop".
func Internal(rule string, p Priority, output string, fields map[string]any) *Alert {
	return &Alert{
		Time: time.Now().UTC(), Rule: rule, Priority: p, Source: SourceInternal,
		Output: output, OutputFields: fields, Hostname: Hostname(), UUID: NewUUID(),
	}
}

// Internal rule names used by Tripline itself.
const (
	RuleEventDrop  = "Tripline internal: syscall event drop"
	RuleEnrichment = "Tripline internal: enrichment unavailable"
	RuleSpoolDrop  = "Tripline internal: alert spool overflow"
)

// appendClock writes Falco's %evt.time form, HH:MM:SS.nnnnnnnnn, in UTC.
func appendClock(dst []byte, t time.Time) []byte {
	t = t.UTC()
	h, m, s := t.Clock()
	dst = append2(dst, h)
	dst = append(dst, ':')
	dst = append2(dst, m)
	dst = append(dst, ':')
	dst = append2(dst, s)
	dst = append(dst, '.')
	ns := t.Nanosecond()
	var b [9]byte
	for i := 8; i >= 0; i-- {
		b[i] = byte('0' + ns%10)
		ns /= 10
	}
	return append(dst, b[:]...)
}

func append2(dst []byte, v int) []byte { return append(dst, byte('0'+v/10), byte('0'+v%10)) }

// AppendOutputLine appends the Falco text line "<time>: <Priority> <output>".
func (a *Alert) AppendOutputLine(dst []byte) []byte {
	dst = appendClock(dst, a.Time)
	dst = append(dst, ": "...)
	dst = append(dst, a.Priority.String()...)
	dst = append(dst, ' ')
	return append(dst, a.Output...)
}

// AppendJSON appends the alert as one Falco-compatible JSON object.
func (a *Alert) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"hostname":`...)
	dst = jsonenc.AppendString(dst, a.Hostname)
	dst = append(dst, `,"output":"`...)
	// The prefix is plain ASCII; only the rendered part needs escaping.
	dst = appendClock(dst, a.Time)
	dst = append(dst, ": "...)
	dst = append(dst, a.Priority.String()...)
	dst = append(dst, ' ')
	dst = jsonenc.AppendEscaped(dst, a.Output)
	dst = append(dst, `","output_fields":`...)
	dst = a.appendFields(dst)
	dst = append(dst, `,"priority":`...)
	dst = jsonenc.AppendString(dst, a.Priority.String())
	dst = append(dst, `,"rule":`...)
	dst = jsonenc.AppendString(dst, a.Rule)
	dst = append(dst, `,"source":`...)
	src := a.Source
	if src == "" {
		src = SourceSyscall
	}
	dst = jsonenc.AppendString(dst, src)
	if src != SourceInternal {
		dst = append(dst, `,"tags":[`...)
		for i, t := range a.Tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, t)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"time":"`...)
	dst = a.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000000000Z")
	dst = append(dst, `","uuid":`...)
	dst = jsonenc.AppendString(dst, a.UUID)
	return append(dst, '}')
}

const evtTime = "evt.time"

func (a *Alert) appendFields(dst []byte) []byte {
	var stack [48]string
	keys := stack[:0]
	addTime := a.Source != SourceInternal
	for k := range a.OutputFields {
		if k == evtTime {
			addTime = false
		}
		keys = append(keys, k)
	}
	if addTime {
		keys = append(keys, evtTime)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = jsonenc.AppendString(dst, k)
		dst = append(dst, ':')
		if v, ok := a.OutputFields[k]; ok {
			dst = appendValue(dst, v)
		} else {
			dst = strconv.AppendInt(dst, a.Time.UnixNano(), 10)
		}
	}
	return append(dst, '}')
}

func appendValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case string:
		return jsonenc.AppendString(dst, x)
	case bool:
		return strconv.AppendBool(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10)
	case int8:
		return strconv.AppendInt(dst, int64(x), 10)
	case int16:
		return strconv.AppendInt(dst, int64(x), 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case float64:
		return appendFloat(dst, x, 64)
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err == nil {
			return append(dst, x...)
		}
		return jsonenc.AppendString(dst, string(x))
	case []string:
		dst = append(dst, '[')
		for i, s := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, s)
		}
		return append(dst, ']')
	case time.Time:
		return jsonenc.AppendString(dst, x.UTC().Format(time.RFC3339Nano))
	case fmt.Stringer:
		return jsonenc.AppendString(dst, x.String())
	case error:
		return jsonenc.AppendString(dst, x.Error())
	}
	b, err := json.Marshal(v)
	if err != nil {
		return jsonenc.AppendString(dst, fmt.Sprint(v))
	}
	return append(dst, b...)
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// wire mirrors the JSON schema for decoding.
type wire struct {
	Hostname     string                     `json:"hostname"`
	Output       string                     `json:"output"`
	OutputFields map[string]json.RawMessage `json:"output_fields"`
	Priority     string                     `json:"priority"`
	Rule         string                     `json:"rule"`
	Source       string                     `json:"source"`
	Tags         []string                   `json:"tags"`
	Time         string                     `json:"time"`
	UUID         string                     `json:"uuid"`
}

// Parse decodes one alert written by AppendJSON (or by Falco with
// json_output: true). Numeric output fields come back as int64 when they
// are integers that fit, else float64; the "<time>: <Priority> " prefix is
// stripped from Output.
func Parse(data []byte) (*Alert, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	p, err := ParsePriority(w.Priority)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: time: %v", ErrDecode, err)
	}
	a := &Alert{
		Time: t.UTC(), Rule: w.Rule, Priority: p, Source: w.Source, Hostname: w.Hostname,
		Tags: w.Tags, UUID: w.UUID, Output: stripPrefix(w.Output, p),
	}
	if w.OutputFields != nil {
		a.OutputFields = make(map[string]any, len(w.OutputFields))
		for k, raw := range w.OutputFields {
			a.OutputFields[k] = decodeValue(raw)
		}
	}
	return a, nil
}

func decodeValue(raw json.RawMessage) any {
	if len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')) {
		if i, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(raw), 10, 64); err == nil {
			return u
		}
		if f, err := strconv.ParseFloat(string(raw), 64); err == nil {
			return f
		}
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	return v
}

// stripPrefix removes "<anything>: <Priority> " from a Falco output line.
func stripPrefix(out string, p Priority) string {
	marker := ": " + p.String() + " "
	if i := strings.Index(out, marker); i >= 0 && i <= 40 {
		return out[i+len(marker):]
	}
	return out
}

// EventDrop reports kernel events lost in the last interval, in the shape of
// Falco's "syscall event drop" alert: counters become string output fields
// (n_evts, n_drops, plus any per-cause counters given). Unlike Falco (Debug)
// it is a Warning, because lost events blind the sensor.
func EventDrop(events, drops uint64, counters map[string]uint64) *Alert {
	fields := make(map[string]any, len(counters)+2)
	for k, v := range counters {
		fields[k] = strconv.FormatUint(v, 10)
	}
	fields["n_evts"] = strconv.FormatUint(events, 10)
	fields["n_drops"] = strconv.FormatUint(drops, 10)
	return Internal(RuleEventDrop, PriorityWarning,
		fmt.Sprintf("Tripline internal: syscall event drop. %d system calls dropped in last second.", drops), fields)
}

// EnrichmentOutage reports that container metadata (what: "containerd", …)
// is unavailable, so alerts lack container fields until it recovers.
func EnrichmentOutage(what string, err error) *Alert {
	msg := "unknown error"
	if err != nil {
		msg = err.Error()
	}
	return Internal(RuleEnrichment, PriorityWarning,
		fmt.Sprintf("Tripline internal: enrichment unavailable (%s): %s", what, msg),
		map[string]any{"enrichment.source": what, "error": msg})
}
