package output

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/alert"
)

func TestLinesSinks(t *testing.T) {
	var buf bytes.Buffer
	path := filepath.Join(t.TempDir(), "alerts.json")
	sinks, err := Parse([]string{"stdout", "file:" + path}, &buf, NATSConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sinks {
		s.Publish(testAlert(1))
		s.Publish(testAlert(2))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Publish(testAlert(3)) // after Close: counted, not written
	}
	want := string(testAlert(1).AppendJSON(nil)) + "\n" + string(testAlert(2).AppendJSON(nil)) + "\n"
	if buf.String() != want {
		t.Errorf("stdout:\n%s", buf.String())
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Errorf("file: %q %v", b, err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if _, err := alert.Parse([]byte(line)); err != nil {
			t.Error(err)
		}
	}
	if st := sinks[0].(*Lines).Stats(); st.Written != 2 || st.Errors != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseSpecs(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range [][]string{{"syslog"}, {"file:"}, {"stdout", "stdout"}, {"file:" + filepath.Join(dir, "no/such/dir/x")}, {"http://x"}} {
		if _, err := Parse(bad, nil, NATSConfig{DataDir: dir}); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		} else if !errors.Is(err, ErrSpec) && !strings.Contains(err.Error(), "opening") {
			t.Logf("%q: %v", bad, err)
		}
	}
	sinks, err := Parse([]string{"nats://127.0.0.1:1"}, nil, NATSConfig{DataDir: dir})
	if err != nil || len(sinks) != 1 || sinks[0].Name() != "nats" {
		t.Fatalf("%v %v", sinks, err)
	}
	if _, ok := sinks[0].(Runner); !ok {
		t.Error("NATS sink must be a Runner")
	}
	sinks[0].Close()
}
