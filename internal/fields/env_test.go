package fields

import (
	"testing"

	"github.com/tripline/tripline/internal/event"
)

func TestEnvFields(t *testing.T) {
	parent := &event.Process{PID: 1, Env: []string{"HOME=/root", "GH_TOKEN=p4rent", "PARENT_ONLY=yes"}}
	grand := &event.Process{PID: 2, Env: []string{"PARENT_ONLY=no", "DEEP=1"}}
	ev := &event.Event{Type: event.TypeExecve, Proc: event.Process{PID: 10,
		Env: []string{"PATH=/bin", "GLIBC_TUNABLES=glibc.malloc.mxfast=0", "API_TOKEN=s3cr3t", "aws_secret_access_key=abc", "EMPTY="}}}
	ev.SetLineage([]*event.Process{parent, grand})
	red := DefaultRedactor()
	cases := []struct {
		field, bracket   string
		want, wantRedact string
		ok               bool
	}{
		{"proc.env", "", "PATH=/bin GLIBC_TUNABLES=glibc.malloc.mxfast=0 API_TOKEN=s3cr3t aws_secret_access_key=abc EMPTY=",
			"PATH=/bin GLIBC_TUNABLES=glibc.malloc.mxfast=0 API_TOKEN=<redacted> aws_secret_access_key=<redacted> EMPTY=", true},
		{"proc.env", "GLIBC_TUNABLES", "glibc.malloc.mxfast=0", "glibc.malloc.mxfast=0", true},
		{"proc.env", "API_TOKEN", "s3cr3t", "<redacted>", true},
		{"proc.env", "EMPTY", "", "", true},
		{"proc.env", "NOPE", "", "", true},
		{"proc.aenv", "1", "HOME=/root GH_TOKEN=p4rent PARENT_ONLY=yes", "HOME=/root GH_TOKEN=<redacted> PARENT_ONLY=yes", true},
		{"proc.aenv", "PARENT_ONLY", "yes", "yes", true},
		{"proc.aenv", "DEEP", "1", "1", true},
		{"proc.aenv", "GH_TOKEN", "p4rent", "<redacted>", true},
		{"proc.aenv", "5", "", "", false},
		{"evt.arg", "env", "PATH=/bin GLIBC_TUNABLES=glibc.malloc.mxfast=0 API_TOKEN=s3cr3t aws_secret_access_key=abc EMPTY=",
			"PATH=/bin GLIBC_TUNABLES=glibc.malloc.mxfast=0 API_TOKEN=<redacted> aws_secret_access_key=<redacted> EMPTY=", true},
	}
	for _, tc := range cases {
		f, a, err := Default().Resolve(tc.field, tc.bracket, tc.bracket != "")
		if err != nil {
			t.Fatalf("%s[%s]: %v", tc.field, tc.bracket, err)
		}
		var c Ctx
		v, ok := f.Extract(&c, ev, &a)
		if ok != tc.ok || v.Str != tc.want {
			t.Errorf("%s[%s] = %q, %v; want %q, %v", tc.field, tc.bracket, v.Str, ok, tc.want, tc.ok)
		}
		if f.Redact == nil {
			t.Fatalf("%s has no redacting renderer", tc.field)
		}
		v, ok = f.Redact(&c, ev, &a, red)
		if ok != tc.ok || v.Str != tc.wantRedact {
			t.Errorf("redacted %s[%s] = %q, %v; want %q", tc.field, tc.bracket, v.Str, ok, tc.wantRedact)
		}
	}
	if _, err := NewRedactor([]string{"A=B"}); err == nil {
		t.Error("NewRedactor accepted a pattern with '='")
	}
	if r, err := NewRedactor(nil); err != nil || r.Hides("API_TOKEN") {
		t.Errorf("empty redactor: %v, hides API_TOKEN", err)
	}
}

func BenchmarkProcEnvKey(b *testing.B) {
	ev := &event.Event{Type: event.TypeExecve, Proc: event.Process{Env: []string{"PATH=/bin", "HOME=/root", "GLIBC_TUNABLES=x"}}}
	f, a, _ := Default().Resolve("proc.env", "GLIBC_TUNABLES", true)
	var c Ctx
	b.ReportAllocs()
	for b.Loop() {
		c.Reset()
		if v, _ := f.Extract(&c, ev, &a); v.Str != "x" {
			b.Fatal(v.Str)
		}
	}
}
