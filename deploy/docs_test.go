package deploy_test

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/*.md")

const (
	ruleAuthoringDoc = "../docs/rule-authoring.md"
	fieldsBegin      = "<!-- BEGIN GENERATED FIELDS: go test ./deploy -run TestDocsFieldTable -update -->"
	fieldsEnd        = "<!-- END GENERATED FIELDS -->"
)

// fieldTable renders the catalogue of fields the sensor supplies, and the
// names of the Falco fields it knows but never supplies.
func fieldTable() string {
	var b strings.Builder
	b.WriteString("| Field | Type | Events | Description |\n|---|---|---|---|\n")
	var missing []string
	for _, f := range fields.Default().All() {
		if len(f.Classes) == 0 {
			missing = append(missing, "`"+f.Name+"`")
			continue
		}
		name := f.Name
		switch f.Arg {
		case fields.ArgIndex:
			name += "[N]"
		case fields.ArgKey:
			name += "[KEY]"
		case fields.ArgIndexOrKey:
			name += "[N or KEY]"
		}
		desc := f.Desc
		if f.FilterOnly {
			desc += " (conditions only, not outputs)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", name, f.Type, classList(f.Classes), strings.ReplaceAll(desc, "|", `\|`))
	}
	fmt.Fprintf(&b, "\nKnown to the rule loader but never supplied (they read as `<NA>` and every comparison on them is false): %s.\n",
		strings.Join(missing, ", "))
	return b.String()
}

func classList(cs []event.Class) string {
	var all []event.Class // every class of kernel events
	for c := event.ClassUnknown + 1; c < event.NumClasses; c++ {
		if c != event.ClassContainer {
			all = append(all, c)
		}
	}
	if len(cs) == len(all)+1 && slices.Contains(cs, event.ClassContainer) {
		return "all"
	}
	if slices.Equal(cs, all) {
		return "process events"
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.String()
	}
	return strings.Join(names, ", ")
}

// TestDocsFieldTable keeps the field reference in docs/rule-authoring.md equal
// to the catalogue in internal/fields. Regenerate it with -update.
func TestDocsFieldTable(t *testing.T) {
	data, err := os.ReadFile(ruleAuthoringDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, fieldsBegin), strings.Index(doc, fieldsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", ruleAuthoringDoc, fieldsBegin, fieldsEnd)
	}
	want := "\n" + fieldTable() + "\n"
	if got := doc[i+len(fieldsBegin) : j]; got != want {
		if *update {
			doc = doc[:i+len(fieldsBegin)] + want + doc[j:]
			if err := os.WriteFile(ruleAuthoringDoc, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("rewrote the field table in %s", ruleAuthoringDoc)
			return
		}
		t.Errorf("the field table in %s is stale; run: go test ./deploy -run TestDocsFieldTable -update", ruleAuthoringDoc)
	}
}

// TestDocsFieldsExist checks every field the prose of the docs names in
// backquotes against the catalogue, so the docs never promise a field the
// sensor does not know.
func TestDocsFieldsExist(t *testing.T) {
	fieldRE := regexp.MustCompile("`((?:proc|evt|fd|user|group|container|k8s|thread|fs)\\.[a-z0-9_.]+)(?:\\[[^\\]]*\\])?")
	for _, doc := range []string{ruleAuthoringDoc, "../docs/architecture.md", "../docs/operations.md", "../docs/security.md", "../docs/deployment.md"} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range fieldRE.FindAllStringSubmatch(string(data), -1) {
			name := m[1]
			if _, ok := fields.Lookup(name); ok {
				continue
			}
			// A dotted argument (evt.arg.flags) resolves through its prefix.
			if _, _, err := fields.Default().Resolve(name, "", false); err == nil {
				continue
			}
			t.Errorf("%s names field %s, which internal/fields does not know", doc, name)
		}
	}
}

// TestDocsMetricsExist checks that every tripline_* metric the docs name is
// registered by the daemon (cmd/sensor), and lists those the docs omit.
func TestDocsMetricsExist(t *testing.T) {
	registered := map[string]bool{}
	re := regexp.MustCompile(`metrics\.(?:Counter|Gauge)Func\(\s*reg,\s*"([a-z0-9_]+)"`)
	files, _ := os.ReadDir("../cmd/sensor")
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".go") || strings.HasSuffix(f.Name(), "_test.go") {
			continue
		}
		data, err := os.ReadFile("../cmd/sensor/" + f.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			registered["tripline_"+m[1]] = true
		}
	}
	if len(registered) == 0 {
		t.Fatal("found no metrics registered in cmd/sensor (has the registration moved?)")
	}
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(tripline_[a-z0-9_]+)(?:\\{[^}`]*\\})?`").FindAllStringSubmatch(string(data), -1) {
		documented[m[1]] = true
		if !registered[m[1]] {
			t.Errorf("docs/operations.md documents %s, which cmd/sensor does not register", m[1])
		}
	}
	for _, name := range sortedKeys(registered) {
		if !documented[name] {
			t.Logf("NOTE: metric %s is not documented in docs/operations.md", name)
		}
	}
}

// TestDocsLinks checks relative links between the docs.
func TestDocsLinks(t *testing.T) {
	entries, err := os.ReadDir("../docs")
	if err != nil {
		t.Fatal(err)
	}
	linkRE := regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		data, err := os.ReadFile("../docs/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range linkRE.FindAllStringSubmatch(string(data), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			if _, err := os.Stat("../docs/" + target); err != nil {
				t.Errorf("docs/%s links to %s, which does not exist", e.Name(), target)
			}
		}
	}
}
