package rules

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

func loadString(t *testing.T, src string, opts Options) (*Ruleset, *Report) {
	t.Helper()
	rs, rep, err := Load([]Source{{Name: "t.yaml", Data: []byte(src)}}, opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return rs, rep
}

func TestOutputFormatting(t *testing.T) {
	rs, _ := loadString(t, `
- rule: out
  desc: d
  condition: evt.type in (openat, execve, connect)
  output: >
    Sensitive file opened (file=%fd.name proc=%proc.name gparent=%proc.aname[2] pid=%proc.pid
    app=%container.label[app] caps=%container.capabilities priv=%container.privileged
    up=%toupper(proc.name) sport=%fd.sport loginuid=%user.loginuid%container.info)
  priority: WARNING
`, Options{})
	r := rs.Rules()[0]
	op := openEvent()
	got := string(r.AppendOutput(nil, op))
	want := "Sensitive file opened (file=/etc/shadow proc=bash gparent=systemd pid=100 app=web caps=(CAP_CHOWN,CAP_SYS_ADMIN) priv=true up=BASH sport=<NA> loginuid=-1)"
	if got != want {
		t.Errorf("output\n got %q\nwant %q", got, want)
	}
	fieldsGot := r.OutputFields(op)
	wantFields := map[string]any{
		"fd.name": "/etc/shadow", "proc.name": "bash", "proc.aname[2]": "systemd", "proc.pid": int64(100),
		"container.label[app]": "web", "container.capabilities": []string{"CAP_CHOWN", "CAP_SYS_ADMIN"},
		"container.privileged": true, "toupper(proc.name)": "BASH", "fd.sport": nil, "user.loginuid": int64(-1),
	}
	if !reflect.DeepEqual(fieldsGot, wantFields) {
		t.Errorf("output fields\n got %#v\nwant %#v", fieldsGot, wantFields)
	}
	js, _ := json.Marshal(fieldsGot)
	if !strings.Contains(string(js), `"proc.pid":100`) || !strings.Contains(string(js), `"fd.sport":null`) {
		t.Errorf("JSON typing: %s", js)
	}
	// Host process: container fields are <NA> except id/name.
	ex := execEvent()
	if got := string(r.AppendOutput(nil, ex)); !strings.Contains(got, "app=<NA>") || !strings.Contains(got, "file=<NA>") {
		t.Errorf("host output: %s", got)
	}
	cn := connectEvent()
	if got := string(r.AppendOutput(nil, cn)); !strings.Contains(got, "file=192.168.1.2:50000->10.0.0.5:443") || !strings.Contains(got, "sport=443") {
		t.Errorf("connect output: %s", got)
	}
}

func TestOptions(t *testing.T) {
	src := `
- rule: a
  desc: d
  condition: evt.type = execve
  output: o
  priority: CRITICAL
  tags: [net]
- rule: b
  desc: d
  condition: evt.type = execve
  output: o
  priority: DEBUG
- rule: c
  desc: d
  condition: evt.type = execve
  output: o
  priority: NOTICE
  enabled: false
- rule: d
  desc: d
  condition: evt.type = kill
  output: o
  priority: NOTICE
`
	names := func(rs *Ruleset) string {
		var out []string
		for _, r := range rs.NewEvaluator().Match(execEvent(), nil) {
			out = append(out, r.Name)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		opts     Options
		want     string
		compiled int
		disabled int
	}{
		{Options{}, "a,b", 2, 1},
		{Options{MinPriority: Notice}, "a", 1, 2},
		{Options{Disable: []string{"*"}, Enable: []string{"tag:net"}}, "a", 1, 2},
		{Options{Enable: []string{"c"}}, "a,b,c", 3, 0},
		{Options{Disable: []string{"[ab]"}}, "", 0, 3},
		{Options{Captured: []event.Type{event.TypeOpenat}}, "", 0, 0},
	} {
		rs, rep := loadString(t, src, tc.opts)
		if got := names(rs); got != tc.want || rep.Compiled != tc.compiled || rep.Disabled != tc.disabled {
			t.Errorf("%+v: matched %q compiled %d disabled %d, want %q %d %d", tc.opts, got, rep.Compiled, rep.Disabled, tc.want, tc.compiled, tc.disabled)
		}
	}
	rs, _ := loadString(t, src, Options{})
	if got := rs.Types(); !reflect.DeepEqual(got, []event.Type{event.TypeExecve}) {
		t.Errorf("Types() = %v", got)
	}
}

func TestExceptionsEvaluate(t *testing.T) {
	rs, _ := loadString(t, `
- list: editors
  items: [vim, "my editor"]
- rule: w
  desc: d
  condition: evt.type = openat and fd.name startswith /etc
  output: o
  priority: ERROR
  exceptions:
    - name: by_editor
      fields: [proc.name, fd.directory]
      comps: [in, =]
      values:
        - [editors, /etc]
`, Options{})
	e := rs.NewEvaluator()
	op := openEvent()
	if len(e.Match(op, nil)) != 1 {
		t.Fatal("bash opening /etc/shadow should match")
	}
	op2 := openEvent()
	op2.Proc.Comm = "vim"
	if len(e.Match(op2, nil)) != 0 {
		t.Fatal("vim is excepted")
	}
	op3 := openEvent()
	op3.Proc.Comm = "my editor"
	if len(e.Match(op3, nil)) != 0 {
		t.Fatal("quoted list item with a space is excepted")
	}
}

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]Priority{"EMERGENCY": Emergency, "alert": Alert, "Critical": Critical, "ERROR": Error,
		"warning": Warning, "NOTICE": Notice, "INFO": Informational, "informational": Informational, "debug": Debug,
		"HIGH": Error, "medium": Warning, "Low": Notice} {
		p, alias, err := ParsePriority(in)
		if err != nil || p != want {
			t.Errorf("%s: %v %v", in, p, err)
		}
		if wantAlias := strings.EqualFold(in, "high") || strings.EqualFold(in, "medium") || strings.EqualFold(in, "low"); alias != wantAlias {
			t.Errorf("%s: alias %v", in, alias)
		}
	}
	if _, _, err := ParsePriority("severe"); err == nil {
		t.Error("severe accepted")
	}
	if Warning.String() != "Warning" || Emergency.Syslog() != 0 || Debug.Syslog() != 7 {
		t.Error("names")
	}
}

func TestOutputRedactsEnvironment(t *testing.T) {
	rs, _ := loadString(t, `
- rule: env
  desc: d
  condition: evt.type = execve and proc.env[API_TOKEN] = s3cr3t and proc.env icontains GLIBC_TUNABLES
  output: env=%proc.env tok=%proc.env[API_TOKEN] arg=%evt.arg.env up=%toupper(proc.env) tun=%proc.env[GLIBC_TUNABLES]
  priority: WARNING
`, Options{})
	ev := execEvent()
	ev.Proc.Env = []string{"GLIBC_TUNABLES=glibc.malloc.mxfast=0", "API_TOKEN=s3cr3t"}
	r := rs.Rules()[0]
	if m := rs.NewEvaluator().Match(ev, nil); len(m) != 1 {
		t.Fatalf("the condition sees the real values: matched %d rules", len(m))
	}
	want := "env=GLIBC_TUNABLES=glibc.malloc.mxfast=0 API_TOKEN=<redacted> tok=<redacted> arg=GLIBC_TUNABLES=glibc.malloc.mxfast=0 API_TOKEN=<redacted> up=<redacted> tun=glibc.malloc.mxfast=0"
	if got := string(r.AppendOutput(nil, ev)); got != want {
		t.Errorf("output\n got %q\nwant %q", got, want)
	}
	js, _ := json.Marshal(r.OutputFields(ev))
	if strings.Contains(string(js), "s3cr3t") || strings.Contains(string(js), "S3CR3T") {
		t.Errorf("output fields leak the secret: %s", js)
	}
	none, err := fields.NewRedactor(nil)
	if err != nil {
		t.Fatal(err)
	}
	rs.SetRedaction(none)
	if got := string(r.AppendOutput(nil, ev)); !strings.Contains(got, "tok=s3cr3t") {
		t.Errorf("redaction off: %s", got)
	}
}
