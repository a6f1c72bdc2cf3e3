package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleAlert() *Alert {
	return &Alert{
		Time:     time.Date(2023, 5, 25, 13, 44, 5, 478445995, time.UTC),
		Rule:     "Terminal shell in container",
		Priority: PriorityNotice,
		Source:   SourceSyscall,
		Output:   "A shell was spawned in a container with an attached terminal (user=root container=ee97d9c4186f shell=sh cmdline=sh -c \"clear\" tty=34816 loginuid=-1 name=\x1b[2J)",
		OutputFields: map[string]any{
			"container.id": "ee97d9c4186f", "proc.name": "sh", "proc.cmdline": "sh -c \"clear\"",
			"proc.tty": uint32(34816), "user.loginuid": int64(-1), "user.name": "root",
			"k8s.ns.name": nil, "proc.aname[2]": "bad\xffutf8", "evt.arg.flags": "O_RDONLY|O_CLOEXEC",
		},
		Hostname: "node-1",
		Tags:     []string{"container", "mitre_execution", "shell"},
		UUID:     "0190a6c5-6f3c-7c8e-9a4b-3d2f1e0c9b8a",
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testenv.Golden(t, filepath.Join("testdata", name), got, *update)
}

// falcoAlert is what a consumer of Falco's json_output reads.
type falcoAlert struct {
	Hostname     string         `json:"hostname"`
	Output       string         `json:"output"`
	OutputFields map[string]any `json:"output_fields"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Time         time.Time      `json:"time"`
}

func TestAlertJSONGolden(t *testing.T) {
	tests := []struct {
		name  string
		alert *Alert
	}{
		{"rule.json", sampleAlert()},
		{"internal.json", &Alert{
			Time: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Rule: RuleEventDrop, Priority: PriorityDebug,
			Source: SourceInternal, Output: "Tripline internal: syscall event drop. 12 system calls dropped in last second.",
			OutputFields: map[string]any{"n_drops": "12", "n_evts": "1000"}, Hostname: "node-1", UUID: "u-1",
		}},
		{"empty.json", &Alert{Time: time.Unix(0, 0), Priority: PriorityDebug}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.alert.AppendJSON(nil)
			golden(t, tt.name, append(got, '\n'))
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
		})
	}
}

func TestFalcoConsumerReadsOurs(t *testing.T) {
	a := sampleAlert()
	var f falcoAlert
	if err := json.Unmarshal(a.AppendJSON(nil), &f); err != nil {
		t.Fatal(err)
	}
	if f.Priority != "Notice" || f.Rule != a.Rule || f.Source != "syscall" || f.Hostname != "node-1" || !f.Time.Equal(a.Time) {
		t.Errorf("header fields: %+v", f)
	}
	if want := "13:44:05.478445995: Notice " + a.Output; f.Output != want {
		t.Errorf("output = %q, want %q", f.Output, want)
	}
	if f.OutputFields["proc.tty"] != float64(34816) || f.OutputFields["user.loginuid"] != float64(-1) {
		t.Errorf("numbers must stay numbers: %v", f.OutputFields)
	}
	if v, ok := f.OutputFields["k8s.ns.name"]; !ok || v != nil {
		t.Errorf("<NA> must be null: %v", v)
	}
	if f.OutputFields["evt.time"] != float64(a.Time.UnixNano()) {
		t.Errorf("evt.time = %v", f.OutputFields["evt.time"])
	}
	if f.OutputFields["proc.aname[2]"] != "bad\uFFFDutf8" {
		t.Errorf("invalid UTF-8 not replaced: %q", f.OutputFields["proc.aname[2]"])
	}
}

func TestParseFalcoExample(t *testing.T) {
	// Falco's documented example, unchanged.
	const falco = `{"hostname":"falco-xczjd","output":"13:44:05.478445995: Critical A shell was spawned (user=root)","priority":"Critical","rule":"Terminal shell in container","source":"syscall","tags":["container","mitre_execution","shell"],"time":"2023-05-25T13:44:05.478445995Z","output_fields":{"container.id":"ee97d9c4186f","evt.time":1685022245478445995,"proc.tty":34816,"user.loginuid":-1,"user.name":"root"}}`
	a, err := Parse([]byte(falco))
	if err != nil {
		t.Fatal(err)
	}
	if a.Priority != PriorityCritical || a.Output != "A shell was spawned (user=root)" || a.OutputFields["proc.tty"] != int64(34816) {
		t.Errorf("parsed %+v", a)
	}
	// Round trip of our own.
	b := sampleAlert()
	got, err := Parse(b.AppendJSON(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.AppendJSON(nil), b.AppendJSON(nil)) {
		// Only the invalid UTF-8 string may differ (it was replaced).
		b.OutputFields["proc.aname[2]"] = "bad\uFFFDutf8"
		b.OutputFields["proc.tty"] = int64(34816)
		if !bytes.Equal(got.AppendJSON(nil), b.AppendJSON(nil)) {
			t.Errorf("round trip:\n%s\n%s", got.AppendJSON(nil), b.AppendJSON(nil))
		}
	}
	for _, bad := range []string{``, `{}`, `{"priority":"Loud","time":"2023-05-25T13:44:05Z"}`, `{"priority":"Debug","time":"yesterday"}`, `[1]`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = nil error", bad)
		}
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		in   string
		want Priority
	}{
		{"EMERGENCY", PriorityEmergency}, {"Alert", PriorityAlert}, {"critical", PriorityCritical}, {"ERROR", PriorityError},
		{"WARNING", PriorityWarning}, {"notice", PriorityNotice}, {"INFO", PriorityInformational},
		{"Informational", PriorityInformational}, {"debug", PriorityDebug},
	}
	for _, tt := range tests {
		got, err := ParsePriority(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParsePriority(%q) = %v, %v", tt.in, got, err)
		}
	}
	if _, err := ParsePriority("loud"); err == nil {
		t.Error("want error")
	}
	if !PriorityCritical.AtLeast(PriorityWarning) || PriorityDebug.AtLeast(PriorityNotice) {
		t.Error("AtLeast")
	}
	if PriorityInformational.String() != "Informational" || Priority(42).Valid() {
		t.Error("String/Valid")
	}
}

func TestNewAndInternal(t *testing.T) {
	a := New(time.Now(), "r", PriorityWarning, "o", nil, nil)
	b := Internal(RuleSpoolDrop, PriorityCritical, "lost", map[string]any{"n": 1})
	if a.UUID == "" || a.UUID == b.UUID || a.Hostname == "" || a.Source != SourceSyscall || b.Source != SourceInternal {
		t.Errorf("%+v %+v", a, b)
	}
	var f map[string]any
	if err := json.Unmarshal(b.AppendJSON(nil), &f); err != nil {
		t.Fatal(err)
	}
	if _, ok := f["tags"]; ok {
		t.Error("internal alerts carry no tags, like Falco's")
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	a := sampleAlert()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = a.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func FuzzParse(f *testing.F) {
	f.Add(sampleAlert().AppendJSON(nil))
	f.Add([]byte(`{"priority":"Debug","time":"2023-05-25T13:44:05.478445995Z","output_fields":{"a":1e400,"b":-0,"c":[1,{"x":null}]}}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Parse(b)
		if err != nil {
			return
		}
		if out := a.AppendJSON(nil); !json.Valid(out) {
			t.Fatalf("re-encoding %q gave invalid JSON %q", b, out)
		}
	})
}

func TestInternalConstructors(t *testing.T) {
	d := EventDrop(1000, 12, map[string]uint64{"n_drops_buffer_total": 12})
	if d.Rule != RuleEventDrop || d.OutputFields["n_drops"] != "12" || d.OutputFields["n_evts"] != "1000" ||
		d.OutputFields["n_drops_buffer_total"] != "12" || d.Source != SourceInternal {
		t.Errorf("%+v", d)
	}
	e := EnrichmentOutage("containerd", errors.New("dial unix /run/containerd/containerd.sock: connect: no such file"))
	if e.Rule != RuleEnrichment || e.OutputFields["enrichment.source"] != "containerd" || e.Priority != PriorityWarning {
		t.Errorf("%+v", e)
	}
}
