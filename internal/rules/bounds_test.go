package rules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileRefuses checks that only regular files within the size limit
// are read, that nothing blocks (a FIFO without a writer would hang the
// test) and that every error is one line wrapping ErrRead or ErrTooLarge.
func TestReadFileRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	exact := filepath.Join(dir, "exact.yaml")
	if err := os.WriteFile(exact, []byte("- list: a\n  items: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(dir, "folder") // a folder holding a FIFO named *.yaml
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(folder, "x.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		limit int64
		want  error
		msg   string
	}{
		{"fifo", fifo, 1 << 20, ErrRead, "a named pipe (FIFO), only regular files are read"},
		{"dev zero", "/dev/zero", 1 << 20, ErrRead, "a character device"},
		{"dev urandom", "/dev/urandom", 1 << 20, ErrRead, "a character device"},
		{"folder with a fifo", folder, 1 << 20, ErrRead, "x.yaml: a named pipe"},
		{"missing", filepath.Join(dir, "nope.yaml"), 1 << 20, ErrRead, "no such file"},
		{"oversize", exact, 21, ErrTooLarge, "exact.yaml: more than 21 bytes"},
		{"at the limit", exact, 22, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadFiles([]string{tt.path}, Options{MaxFileBytes: tt.limit})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("want a load, got %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, want one line wrapping %v containing %q", err, tt.want, tt.msg)
			}
		})
	}
	if _, _, err := LoadFiles([]string{exact}, Options{}); err != nil {
		t.Errorf("the default limit must take a small file: %v", err)
	}
}

// TestLoadBounds covers inputs whose cost used to grow without bound: each
// is refused with a located error, like the other load errors.
func TestLoadBounds(t *testing.T) {
	rule := func(name, cond string) string {
		return fmt.Sprintf("- rule: %s\n  desc: d\n  condition: %s\n  output: o\n  priority: info\n", name, cond)
	}
	items := func(prefix string, n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s%d", prefix, i)
		}
		return b.String()
	}
	var changes strings.Builder
	changes.WriteString("- list: l\n  items: [a]\n")
	for i := range maxChanges + 5 {
		fmt.Fprintf(&changes, "- list: l\n  items: [x%d]\n  override: {items: append}\n", i)
	}
	changes.WriteString(rule("r", "evt.type = execve and proc.name in (l)"))
	var shared strings.Builder // a large list used by many rules
	fmt.Fprintf(&shared, "- list: big\n  items: [%s]\n", items("p", maxListItems))
	for i := range maxTotalChecks/maxListItems + 1 {
		shared.WriteString(rule(fmt.Sprint("r", i), "evt.type = execve and proc.name in (big)"))
	}
	var aliased strings.Builder // one long sequence named by many lists
	fmt.Fprintf(&aliased, "- list: big\n  items: &big [%s]\n", items("p", maxListItems))
	for i := range maxTotalValues/maxListItems + 1 {
		fmt.Fprintf(&aliased, "- list: l%d\n  items: *big\n", i)
	}
	tests := []struct {
		name, src string
		want      string // the first error, file:line:col item: message
	}{
		{"inline list", rule("r", "evt.type = execve and proc.name in ("+items("p", maxListItems+1)+")"),
			`t.yaml:3:36: rule "r": list too large (more than 100000 items)`},
		{"inline list after substitution", "- list: l\n  items: [" + items("p", maxListItems) + "]\n" +
			rule("r", "evt.type = execve and proc.name in (l, one_more)"),
			`t.yaml:5:36: rule "r": list too large (more than 100000 items)`},
		{"inline list in a macro", "- macro: m\n  condition: proc.name in (" + items("p", maxListItems+1) + ")\n" +
			rule("r", "evt.type = execve and m"),
			`t.yaml:2:14: macro "m": list too large (more than 100000 items)`},
		{"total checks", shared.String(),
			`t.yaml:48:3: rule "r9": rules too large in total: more than 1000000 checks in all conditions after list and macro expansion`},
		{"aliases", aliased.String(),
			`t.yaml:41:3: list "l19": rules too large in total: more than 2000000 list entries (items, tags, exception values), YAML aliases included`},
		{"list loop", "- list: a\n  items: [b]\n- list: b\n  items: [a]\n" + rule("r", "evt.type = execve and proc.name in (a)"),
			`t.yaml:4:11: list "b": reference loop in list "a" (a -> b -> a)`},
		{"rule and macro", "- rule: r\n  macro: r\n  condition: evt.type = execve\n  desc: d\n  output: o\n  priority: info\n",
			`t.yaml:1:3: rule "r": item is both a rule and a macro: each item must be exactly one of rule, macro, list, required_engine_version or required_plugin_versions`},
		{"too many changes", changes.String(),
			fmt.Sprintf(`t.yaml:%d:3: list "l": more than 1000 appends, overrides or redefinitions of the same name`, 3+3*maxChanges)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rep, err := Load([]Source{{Name: "t.yaml", Data: []byte(tt.src)}}, Options{})
			if err == nil || len(rep.Errors) == 0 {
				t.Fatal("want an error, got none")
			}
			d := rep.Errors[0]
			d.Snippet = ""
			if got := d.Error(); got != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestSubstitutionBudget runs out the list substitution budget of a load:
// the first condition over it is reported once, later ones fail silently.
func TestSubstitutionBudget(t *testing.T) {
	src := "- list: l\n  items: [a, b, c]\n"
	for i := range 3 {
		src += fmt.Sprintf("- rule: r%d\n  desc: d\n  condition: evt.type = execve and proc.name in (l, l, l, l)\n  output: o\n  priority: info\n", i)
	}
	l := newLoader(context.Background(), Options{})
	l.substBudget = 350 // about two rules' worth
	l.loadFile(Source{Name: "t.yaml", Data: []byte(src)})
	rs := l.compile()
	if len(l.rep.Errors) != 1 || !strings.Contains(l.rep.Errors[0].Message, "bytes of condition text after list substitution") {
		t.Fatalf("want one budget error, got %+v", l.rep.Errors)
	}
	if len(rs.Rules()) != 2 {
		t.Errorf("the rules within the budget still compile: got %d", len(rs.Rules()))
	}
}

// countdownCtx reports cancellation from its n-th Err call on: a
// deterministic way to stop a load in the middle.
type countdownCtx struct {
	context.Context
	n int
}

func (c *countdownCtx) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestLoadCancelled checks that a load stops between items when its
// context ends, returns an error wrapping the context's and an empty
// ruleset, and that an ended context stops LoadFiles before reading.
func TestLoadCancelled(t *testing.T) {
	var b strings.Builder
	for i := range 200 {
		fmt.Fprintf(&b, "- rule: r%d\n  desc: d\n  condition: evt.type = execve and proc.name = p%d\n  output: o\n  priority: info\n", i, i)
	}
	for _, n := range []int{0, 1, 50, 150, 300} {
		ctx := &countdownCtx{Context: context.Background(), n: n}
		rs, _, err := LoadContext(ctx, []Source{{Name: "t.yaml", Data: []byte(b.String())}}, Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("n=%d: want context.Canceled, got %v", n, err)
		}
		if len(rs.Rules()) != 0 {
			t.Errorf("n=%d: a stopped load returns an empty ruleset, got %d rules", n, len(rs.Rules()))
		}
		if ctx.n >= 0 {
			t.Errorf("n=%d: the context was checked only %d times", n, n-ctx.n)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fifo := filepath.Join(t.TempDir(), "f.yaml") // would be refused, but nothing is read
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadFilesContext(ctx, []string{fifo}, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
}
