package ruletest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
	"github.com/tripline/tripline/internal/rules"
)

// ErrFormat reports a malformed test file.
var ErrFormat = errors.New("ruletest: bad test file")

// File is one parsed test file.
type File struct {
	Path  string
	Rules []string // absolute rule paths
	Tests []Case
}

// Case is one test.
type Case struct {
	Name         string
	Line         int
	Event        map[string]any
	Expect       []string
	ExpectFields map[string]map[string]any
	Run          string
	Container    bool
}

type rawFile struct {
	Rules []string  `yaml:"rules"`
	Tests []rawCase `yaml:"tests"`
}

type rawCase struct {
	Name         string                    `yaml:"name"`
	Event        map[string]any            `yaml:"event"`
	Expect       *[]string                 `yaml:"expect"`
	ExpectFields map[string]map[string]any `yaml:"expect_fields"`
	Run          string                    `yaml:"run"`
	Container    bool                      `yaml:"container"`
}

// looksLikeRules reports whether doc is a Falco rules file: a sequence of
// mappings keyed by rule, macro, list or required_engine_version.
func looksLikeRules(doc *yaml.Node) bool {
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode {
		return false
	}
	for _, item := range doc.Content[0].Content {
		if item.Kind != yaml.MappingNode || len(item.Content) == 0 {
			continue
		}
		switch item.Content[0].Value {
		case "rule", "macro", "list", "required_engine_version", "required_plugin_versions":
			return true
		}
	}
	return false
}

// ParseFile reads and checks a test file.
func ParseFile(path string) (*File, error) {
	data, err := rules.ReadFile(path, rules.DefaultMaxFileBytes) // a FIFO or /dev/zero must not hang
	if err != nil {
		return nil, fmt.Errorf("reading test file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFormat, path, err)
	}
	if looksLikeRules(&doc) {
		return nil, fmt.Errorf("%w: %s is a rules file (a list of rule, macro and list items), not a test file; "+
			"a test file is a mapping with `rules:` (the rule files or folders to load) and `tests:`, like rules/tests/*.yaml",
			ErrFormat, path)
	}
	var raw rawFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrFormat, path, err)
	}
	lines := caseLines(&doc)
	dir := filepath.Dir(path)
	f := &File{Path: path}
	rulePaths := raw.Rules
	if len(rulePaths) == 0 {
		rulePaths = []string{".."}
	}
	for _, r := range rulePaths {
		if !filepath.IsAbs(r) {
			r = filepath.Join(dir, r)
		}
		f.Rules = append(f.Rules, r)
	}
	var errs []error
	seen := map[string]bool{}
	for i, rc := range raw.Tests {
		c := Case{Name: rc.Name, Event: rc.Event, ExpectFields: rc.ExpectFields, Run: rc.Run, Container: rc.Container}
		if i < len(lines) {
			c.Line = lines[i]
		}
		where := fmt.Sprintf("%s:%d", path, c.Line)
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("%s: test without a name", where))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("%s: duplicate test name %q", where, c.Name))
		}
		seen[c.Name] = true
		if c.Event == nil {
			errs = append(errs, fmt.Errorf("%s: test %q has no event", where, c.Name))
		}
		if rc.Expect == nil {
			errs = append(errs, fmt.Errorf("%s: test %q has no expect (use [] for no alert)", where, c.Name))
		} else {
			c.Expect = *rc.Expect
		}
		for r := range c.ExpectFields {
			if !slices.Contains(c.Expect, r) {
				errs = append(errs, fmt.Errorf("%s: test %q: expect_fields names %q, which is not in expect", where, c.Name, r))
			}
		}
		f.Tests = append(f.Tests, c)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrFormat, errors.Join(errs...))
	}
	return f, nil
}

// caseLines returns the line of each item of the tests sequence.
func caseLines(doc *yaml.Node) []int {
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil
	}
	m := doc.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "tests" && m.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, n := range m.Content[i+1].Content {
				out = append(out, n.Line)
			}
			return out
		}
	}
	return nil
}

// Result is the outcome of one test.
type Result struct {
	File, Name string
	Line       int
	Missing    []string // expected rules that did not fire
	Extra      []string // rules that fired unexpectedly
	FieldDiffs []string // "rule: field: got X, want Y"
	Err        error    // the test could not run
	Skipped    string   // why the test did not run (live mode: no run: snippet)
}

// Pass reports whether the test passed.
func (r *Result) Pass() bool {
	return r.Err == nil && len(r.Missing) == 0 && len(r.Extra) == 0 && len(r.FieldDiffs) == 0
}

// Runner evaluates test files offline, loading each distinct rule set once.
// Offline tests are about rule logic, not capture: leave Options.Captured nil
// so that rules are compiled for every event type package event represents,
// whether or not the kernel probes of this build deliver it.
type Runner struct {
	Options rules.Options
	sets    map[string]*rules.Ruleset
}

// RunFile is RunFileContext without cancellation.
func (r *Runner) RunFile(f *File) ([]Result, error) {
	return r.RunFileContext(context.Background(), f)
}

// RunFileContext runs every test of f; ctx stops loading its rules.
func (r *Runner) RunFileContext(ctx context.Context, f *File) ([]Result, error) {
	rs, err := r.ruleset(ctx, f.Rules)
	if err != nil {
		return nil, err
	}
	ev := rs.NewEvaluator()
	out := make([]Result, 0, len(f.Tests))
	for _, c := range f.Tests {
		res := Result{File: f.Path, Name: c.Name, Line: c.Line}
		if why := Unrepresentable(c.Event); why != "" {
			res.Skipped = why
			out = append(out, res)
			continue
		}
		e, err := BuildEvent(c.Event)
		if err != nil {
			res.Err = err
			out = append(out, res)
			continue
		}
		matched := ev.Match(e, nil)
		Compare(&res, c, matched, e)
		out = append(out, res)
	}
	return out, nil
}

// Unrepresentable says why a test event cannot be built by this build even
// though it is valid Falco: its evt.type is a Falco event type that package
// event has no Type for yet, or it sets a Falco field this build knows but
// never supplies (proc.env, ...). Such tests are skipped, not failed, so rule
// files can carry tests for what a later sensor captures. It returns "" when
// the event is representable or simply wrong (BuildEvent reports that).
func Unrepresentable(ev map[string]any) string {
	if name, ok := ev["evt.type"].(string); ok {
		if _, known := event.ParseType(name); !known && rules.IsFalcoEventType(name) {
			return fmt.Sprintf("evt.type %s is not represented by this build", name)
		}
	}
	keys := make([]string, 0, len(ev))
	for k := range ev {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		base, _, _ := strings.Cut(k, "[")
		if f, ok := fields.Lookup(base); ok && len(f.Classes) == 0 {
			return fmt.Sprintf("field %s is not supplied by this build", base)
		}
	}
	return ""
}

// Compare fills res by comparing the rules that fired with the expectations.
func Compare(res *Result, c Case, matched []*rules.Rule, e *event.Event) {
	got := map[string]*rules.Rule{}
	for _, m := range matched {
		got[m.Name] = m
	}
	for _, want := range c.Expect {
		if _, ok := got[want]; !ok {
			res.Missing = append(res.Missing, want)
		}
	}
	for name := range got {
		if !slices.Contains(c.Expect, name) {
			res.Extra = append(res.Extra, name)
		}
	}
	sort.Strings(res.Extra)
	for rule, fields := range c.ExpectFields {
		m, ok := got[rule]
		if !ok {
			continue
		}
		have := m.OutputFields(e)
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if g, w := fmt.Sprint(have[k]), fmt.Sprint(fields[k]); g != w {
				res.FieldDiffs = append(res.FieldDiffs, fmt.Sprintf("%s: %s: got %q, want %q", rule, k, g, w))
			}
		}
	}
}

func (r *Runner) ruleset(ctx context.Context, paths []string) (*rules.Ruleset, error) {
	key := strings.Join(paths, "\x00")
	if rs, ok := r.sets[key]; ok {
		return rs, nil
	}
	rs, _, err := rules.LoadFilesContext(ctx, paths, r.Options)
	if err != nil {
		return nil, fmt.Errorf("loading rules %s: %w", strings.Join(paths, ", "), err)
	}
	if r.sets == nil {
		r.sets = map[string]*rules.Ruleset{}
	}
	r.sets[key] = rs
	return rs, nil
}

// Collect expands paths (files or folders of *.yaml/*.yml) into test files, sorted.
func Collect(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("test path: %w", err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("test folder: %w", err)
		}
		for _, e := range ents {
			if n := e.Name(); !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				out = append(out, filepath.Join(p, n))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
