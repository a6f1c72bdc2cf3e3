package pipeline

import (
	"bufio"
	"fmt"
	"io"

	"github.com/tripline/tripline/internal/event"
)

// MaxRecordLine bounds one line of a recorded event file.
const MaxRecordLine = 1 << 20

// JSONLines is a Source over a recording: one flat JSON event per line, as
// `sensor trace --json --record` writes them. Blank lines are ignored; a line
// that does not decode is reported as a skippable error naming its number.
type JSONLines struct {
	sc   *bufio.Scanner
	line int
}

// NewJSONLines reads events from r.
func NewJSONLines(r io.Reader) *JSONLines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxRecordLine)
	return &JSONLines{sc: sc}
}

// Read decodes the next event into ev.
func (j *JSONLines) Read(ev *event.Event) error {
	for j.sc.Scan() {
		j.line++
		b := j.sc.Bytes()
		if len(trimSpace(b)) == 0 {
			continue
		}
		e, err := event.UnmarshalJSON(b)
		if err != nil {
			return ErrSkip(fmt.Errorf("line %d: %w", j.line, err))
		}
		*ev = *e
		return nil
	}
	if err := j.sc.Err(); err != nil {
		return fmt.Errorf("reading recording after line %d: %w", j.line, err)
	}
	return io.EOF
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}
