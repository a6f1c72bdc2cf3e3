package rules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// EngineVersion is the Falco engine version whose rules language this
// package implements; required_engine_version must be compatible with it.
const EngineVersion = "0.63.0"

// DefaultMaxFileBytes is the size limit of one rules file when
// Options.MaxFileBytes is zero.
const DefaultMaxFileBytes = 16 << 20

// Options control a load.
type Options struct {
	// MinPriority disables rules less severe than it. The zero value loads
	// every priority (like Debug).
	MinPriority Priority
	// Disable then Enable are applied in that order after loading: each
	// entry is a glob on rule names ("*" matches everything) or "tag:NAME"
	// for every rule with that tag. Enable also enables rules the files
	// declare with enabled: false, like Falco's rules.enable config.
	Enable, Disable []string
	// Captured lists the event types the sensor can deliver; nil means
	// every event.Type.
	Captured []event.Type
	// MaxFileBytes bounds each file LoadFiles reads; 0 means
	// DefaultMaxFileBytes.
	MaxFileBytes int64
}

// Source is one rules file's content. Name is used in file:line:col.
type Source struct {
	Name string
	Data []byte
}

// LoadFiles is LoadFilesContext without cancellation.
func LoadFiles(paths []string, opts Options) (*Ruleset, *Report, error) {
	return LoadFilesContext(context.Background(), paths, opts)
}

// LoadFilesContext reads the given files and folders (a folder contributes
// its *.yaml and *.yml files in lexical order) and loads them in order.
// Only regular files of at most opts.MaxFileBytes are read: anything else is
// an error wrapping ErrRead or ErrTooLarge. err is non-nil iff reading failed, ctx ended
// (err wraps ctx.Err()) or the report has errors.
func LoadFilesContext(ctx context.Context, paths []string, opts Options) (*Ruleset, *Report, error) {
	files, err := ExpandPaths(paths)
	if err != nil {
		return nil, &Report{}, err
	}
	limit := opts.MaxFileBytes
	if limit <= 0 {
		limit = DefaultMaxFileBytes
	}
	srcs := make([]Source, 0, len(files))
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return &Ruleset{}, &Report{}, fmt.Errorf("rules: load stopped: %w", err)
		}
		data, err := ReadFile(f, limit)
		if err != nil {
			return nil, &Report{}, err
		}
		srcs = append(srcs, Source{Name: f, Data: data})
	}
	return LoadContext(ctx, srcs, opts)
}

// ReadFile reads one rules (or rule test) file of at most limit bytes. It
// refuses anything but a regular file without blocking on it (a FIFO, a
// device such as /dev/zero, a socket), and re-checks the opened file so a
// swap after the check cannot slip one in. Errors wrap ErrRead or
// ErrTooLarge and fit on one line.
func ReadFile(path string, limit int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	// O_NONBLOCK: opening a FIFO swapped in after the Stat must not wait
	// for a writer; it changes nothing for a regular file.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRead, err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	if st.Size() > limit {
		return nil, tooLarge(path, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1)) // +1: a file that grew is still caught
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRead, path, err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, limit)
	}
	return data, nil
}

func notRegular(path string, m fs.FileMode) error {
	kind := "not a regular file"
	switch {
	case m.IsDir():
		kind = "a directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		kind = "a socket"
	case m&fs.ModeCharDevice != 0:
		kind = "a character device"
	case m&fs.ModeDevice != 0:
		kind = "a block device"
	}
	return fmt.Errorf("%w: %s: %s, only regular files are read", ErrRead, path, kind)
}

func tooLarge(path string, limit int64) error {
	return fmt.Errorf("%w: %s: more than %d bytes", ErrTooLarge, path, limit)
}

// ExpandPaths replaces each folder by its *.yaml/*.yml entries, sorted
// (without recursing; an entry that is not a regular file is kept, so that
// reading it reports it).
func ExpandPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRead, err)
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRead, err)
		}
		var names []string
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				names = append(names, n)
			}
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, filepath.Join(p, n))
		}
	}
	return out, nil
}

// Load is LoadContext without cancellation.
func Load(srcs []Source, opts Options) (*Ruleset, *Report, error) {
	return LoadContext(context.Background(), srcs, opts)
}

// LoadContext loads rules from sources in order. err is non-nil iff the
// report has errors or ctx ended first (err then wraps ctx.Err(), the load
// stops within one item and the Ruleset is empty); the Ruleset is usable
// (without the failed rules) either way.
func LoadContext(ctx context.Context, srcs []Source, opts Options) (rs *Ruleset, rep *Report, err error) {
	l := newLoader(ctx, opts)
	defer func() {
		// Last line of defence: no input may crash the sensor.
		if r := recover(); r != nil {
			l.rep.Errors = append(l.rep.Errors, Diag{Message: fmt.Sprintf("internal error while loading rules: %v", r)})
			rs, rep, err = &Ruleset{}, l.rep, l.rep.Err()
		}
	}()
	for _, s := range srcs {
		if l.stopped() {
			break
		}
		l.loadFile(s)
	}
	rs = l.compile()
	order := map[string]int{}
	for i, s := range srcs {
		if _, ok := order[s.Name]; !ok {
			order[s.Name] = i
		}
	}
	for _, ds := range [][]Diag{l.rep.Errors, l.rep.Warnings} {
		sort.SliceStable(ds, func(i, j int) bool {
			a, b := ds[i], ds[j]
			if order[a.File] != order[b.File] {
				return order[a.File] < order[b.File]
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
	}
	if err := ctx.Err(); err != nil {
		return &Ruleset{}, l.rep, fmt.Errorf("rules: load stopped: %w", err)
	}
	return rs, l.rep, l.rep.Err()
}

type listDef struct {
	name     string
	index    int
	items    []string
	at       []srcPos // where each item is
	expanded []string
	file     *srcFile
	node     *yaml.Node
	used     bool
	changes  int // appends, overrides and redefinitions (maxChanges)
}

// srcPos is where a YAML node is.
type srcPos struct {
	file *srcFile
	node *yaml.Node
}

type macroDef struct {
	name      string
	index     int
	cond      *srcText
	file      *srcFile
	node      *yaml.Node
	used      bool
	parsed    node
	src       *exprSrc
	failed    bool
	state     int // 0 unresolved, 1 resolving, 2 resolved
	resolved  node
	resolveOK bool
	changes   int
}

type excDef struct {
	name      string
	fields    []string
	fieldList bool
	comps     []string
	values    [][]excVal
	file      *srcFile
	node      *yaml.Node
}

type excVal struct {
	items  []string
	isList bool
}

type ruleDef struct {
	name         string
	index        int
	cond         *srcText
	output       string
	outputNode   *yaml.Node
	outputLead   int // bytes trimmed from the start of the output value
	desc         string
	priority     Priority
	source       string
	enabled      bool
	tags         []string
	exceptions   []*excDef
	warnEvttypes bool
	skipUnknown  bool
	file         *srcFile
	node         *yaml.Node
	changes      int
}

type loader struct {
	ctx    context.Context
	opts   Options
	rep    *Report
	cat    *fields.Catalogue
	known  map[string]bool
	lists  map[string]*listDef
	macros map[string]*macroDef
	rules  map[string]*ruleDef
	lorder []*listDef
	morder []*macroDef
	rorder []*ruleDef

	preds          []compiledPred
	predIdx        map[string]int
	predByNode     map[*checkNode]int
	slots          map[string]int
	checks         int // towards maxTotalChecks
	checksReported bool
	values         int // towards maxTotalValues
	valuesReported bool
	cur            srcPos // the top-level item being read

	substBudget   int // bytes of list substitution left (maxSubstBytes)
	substReported bool

	// generic compiles every check through the Value path, without the
	// fast paths: the reference the tests compare them against.
	generic bool
}

func newLoader(ctx context.Context, opts Options) *loader {
	return &loader{
		ctx:    ctx,
		opts:   opts,
		rep:    &Report{},
		cat:    fields.Default(),
		known:  knownEventNames(),
		lists:  make(map[string]*listDef),
		macros: make(map[string]*macroDef),
		rules:  make(map[string]*ruleDef),

		substBudget: maxSubstBytes,
	}
}

// stopped reports whether the load's context ended: the loader checks it
// between items, lists, macros and rules, each bounded in size, so that a
// cancelled load returns promptly.
func (l *loader) stopped() bool { return l.ctx.Err() != nil }

func (l *loader) diagAt(f *srcFile, n *yaml.Node, item, msg string) Diag {
	d := Diag{Item: item, Message: msg}
	if f != nil {
		d.File = f.name
	}
	if n != nil {
		d.Line, d.Col = n.Line, n.Column
	}
	return d
}

func (l *loader) errf(f *srcFile, n *yaml.Node, item, format string, args ...any) {
	l.rep.Errors = append(l.rep.Errors, l.diagAt(f, n, item, fmt.Sprintf(format, args...)))
}

func (l *loader) warnf(f *srcFile, n *yaml.Node, item, format string, args ...any) {
	l.rep.Warnings = append(l.rep.Warnings, l.diagAt(f, n, item, fmt.Sprintf(format, args...)))
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func (l *loader) loadFile(s Source) {
	f := &srcFile{name: s.Name, data: s.Data}
	dec := yaml.NewDecoder(bytes.NewReader(s.Data))
	for {
		var doc yaml.Node
		err := l.decode(dec, &doc)
		if errors.Is(err, io.EOF) || l.stopped() {
			return
		}
		if err != nil {
			d := Diag{File: f.name, Line: 1, Col: 1, Message: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				d.Line, _ = strconv.Atoi(m[1])
			}
			l.rep.Errors = append(l.rep.Errors, d)
			return
		}
		root := &doc
		if root.Kind == yaml.DocumentNode {
			if len(root.Content) == 0 {
				continue
			}
			root = root.Content[0]
		}
		root = deref(root)
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if root.Kind != yaml.SequenceNode {
			l.errf(f, root, "", "rules content is not a YAML sequence of objects")
			continue
		}
		for _, it := range root.Content {
			if l.stopped() {
				return
			}
			l.item(f, deref(it))
		}
	}
}

// decode decodes the next document, returning early when the load's
// context ends: one document can take seconds at the size limit. The
// abandoned decode finishes on its own and is dropped.
func (l *loader) decode(dec *yaml.Decoder, n *yaml.Node) error {
	if l.ctx.Done() == nil {
		return decodeSafe(dec, n)
	}
	var doc yaml.Node // not n: the abandoned decode must not write to it
	done := make(chan error, 1)
	go func() { done <- decodeSafe(dec, &doc) }()
	select {
	case err := <-done:
		*n = doc
		return err
	case <-l.ctx.Done():
		return l.ctx.Err()
	}
}

// decodeSafe guards against panics inside the YAML library.
func decodeSafe(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// mapping is a decoded item: key → value node, and key nodes for positions.
type mapping struct {
	node *yaml.Node
	vals map[string]*yaml.Node
	keys map[string]*yaml.Node
	ord  []string
}

func (l *loader) mapping(f *srcFile, n *yaml.Node, item string) (*mapping, bool) {
	if n.Kind != yaml.MappingNode {
		l.errf(f, n, item, "expected a mapping (key: value pairs), got %s", kindName(n))
		return nil, false
	}
	m := &mapping{node: n, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			l.errf(f, k, item, "keys must be strings")
			continue
		}
		if _, dup := m.vals[k.Value]; dup {
			l.errf(f, k, item, "duplicate key %q", k.Value)
			continue
		}
		m.vals[k.Value], m.keys[k.Value] = v, k
		m.ord = append(m.ord, k.Value)
	}
	return m, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar"
	}
	return "an unsupported node"
}

func (m *mapping) has(k string) bool { _, ok := m.vals[k]; return ok }

// str reads key k as a string (any non-null scalar).
func (l *loader) str(f *srcFile, m *mapping, k, item string) (string, *yaml.Node, bool) {
	v, ok := m.vals[k]
	if !ok {
		return "", nil, false
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		l.errf(f, v, item, "%s must be a string, got %s", k, kindName(v))
		return "", v, false
	}
	return v.Value, v, true
}

func (l *loader) boolean(f *srcFile, m *mapping, k, item string) (bool, bool) {
	v, ok := m.vals[k]
	if !ok {
		return false, false
	}
	if v.Kind == yaml.ScalarNode {
		switch strings.ToLower(v.Value) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	l.errf(f, v, item, "%s must be true or false, got %q", k, v.Value)
	return false, false
}

func (l *loader) strList(f *srcFile, v *yaml.Node, what, item string) ([]string, bool) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, true
	}
	if v.Kind != yaml.SequenceNode {
		l.errf(f, v, item, "%s must be a list, got %s", what, kindName(v))
		return nil, false
	}
	if !l.countValues(len(v.Content), item) {
		return nil, false
	}
	out := make([]string, 0, len(v.Content))
	ok := true
	for _, e := range v.Content {
		e = deref(e)
		if e.Kind != yaml.ScalarNode || e.Tag == "!!null" {
			l.errf(f, e, item, "%s entries must be strings, got %s", what, kindName(e))
			ok = false
			continue
		}
		out = append(out, e.Value)
	}
	return out, ok
}

// maxTotalValues bounds the list entries (list items, tags, exception
// fields, comps and values) a load reads. A file cannot hold more than a
// few million, but YAML aliases let it name one long sequence many times.
const maxTotalValues = 2000000

// countValues counts n more list entries and reports, once, when the load
// goes over maxTotalValues.
func (l *loader) countValues(n int, item string) bool {
	if l.values += n; l.values <= maxTotalValues {
		return true
	}
	// At the item: the sequence may be an alias target anywhere in the file.
	l.errOnce(&l.valuesReported, l.cur.file, l.cur.node, item, "rules too large in total: more than %d list entries (items, tags, exception values), YAML aliases included", maxTotalValues)
	return false
}

// errOnce reports a load-wide limit the first time it is exceeded (*done
// records that): one error, where the total went over, not one per item
// after it.
func (l *loader) errOnce(done *bool, f *srcFile, n *yaml.Node, item, format string, args ...any) {
	if !*done {
		*done = true
		l.errf(f, n, item, format, args...)
	}
}

func (l *loader) checkKeys(f *srcFile, m *mapping, item string, allowed ...string) {
	for _, k := range m.ord {
		found := false
		for _, a := range allowed {
			if a == k {
				found = true
				break
			}
		}
		if !found {
			l.warnf(f, m.keys[k], item, "unknown key %q ignored", k)
		}
	}
}

// overrides reads the override: mapping (key → append|replace).
func (l *loader) overrides(f *srcFile, m *mapping, item string, appendable, replaceable []string) (map[string]string, bool) {
	v, ok := m.vals["override"]
	if !ok {
		return nil, true
	}
	om, ok := l.mapping(f, v, item)
	if !ok {
		return nil, false
	}
	out := map[string]string{}
	good := true
	for _, k := range om.ord {
		mode := om.vals[k]
		if mode.Kind != yaml.ScalarNode || (mode.Value != "append" && mode.Value != "replace") {
			l.errf(f, mode, item, "override for %q must be append or replace", k)
			good = false
			continue
		}
		allowed := appendable
		if mode.Value == "replace" {
			allowed = replaceable
		}
		if !contains(allowed, k) {
			l.errf(f, om.keys[k], item, "key %q cannot be overridden with %s", k, mode.Value)
			good = false
			continue
		}
		if !m.has(k) {
			l.errf(f, om.keys[k], item, "override of %q but the item has no %q key", k, k)
			good = false
			continue
		}
		out[k] = mode.Value
	}
	for _, k := range m.ord {
		if (contains(appendable, k) || contains(replaceable, k)) && out[k] == "" && good {
			if _, listed := om.vals[k]; !listed {
				l.errf(f, m.keys[k], item, "unexpected key %q: no corresponding entry under 'override' is defined", k)
				good = false
			}
		}
	}
	return out, good
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (l *loader) item(f *srcFile, n *yaml.Node) {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	l.cur = srcPos{f, n}
	m, ok := l.mapping(f, n, "")
	if !ok {
		return
	}
	if kinds := m.kinds(); len(kinds) > 1 {
		item := ""
		if v := m.vals[kinds[0]]; kinds[0] == "rule" || kinds[0] == "macro" || kinds[0] == "list" {
			if v.Kind == yaml.ScalarNode {
				item = fmt.Sprintf("%s %q", kinds[0], v.Value)
			}
		}
		l.errf(f, n, item, "item is both a %s and a %s: each item must be exactly one of rule, macro, list, required_engine_version or required_plugin_versions",
			strings.Join(kinds[:len(kinds)-1], ", a "), kinds[len(kinds)-1])
		return
	}
	switch {
	case m.has("required_engine_version"):
		l.engineVersion(f, m)
	case m.has("required_plugin_versions"):
		// Plugins are not used: the sensor supplies container.* itself.
	case m.has("list"):
		l.list(f, m)
	case m.has("macro"):
		l.macro(f, m)
	case m.has("rule"):
		l.rule(f, m)
	default:
		l.warnf(f, n, "", "unknown top level item ignored (keys: %s)", strings.Join(m.ord, ", "))
	}
}

// kinds lists the keys of m that say what a top-level item is.
func (m *mapping) kinds() []string {
	var out []string
	for _, k := range []string{"rule", "macro", "list", "required_engine_version", "required_plugin_versions"} {
		if m.has(k) {
			out = append(out, k)
		}
	}
	return out
}

func parseSemver(s string) ([3]int, bool) {
	var v [3]int
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

// maxChanges bounds the appends, overrides and redefinitions of one list,
// macro or rule: appending costs the length of what is already there, so
// an unbounded number would make loading quadratic in the file size.
const maxChanges = 1000

// tooManyChanges counts one more change of an item and reports, once, when
// there are more than maxChanges.
func (l *loader) tooManyChanges(n *int, f *srcFile, m *mapping, item string) bool {
	*n++
	if *n == maxChanges+1 {
		l.errf(f, m.node, item, "more than %d appends, overrides or redefinitions of the same name", maxChanges)
	}
	return *n > maxChanges
}

func (l *loader) engineVersion(f *srcFile, m *mapping) {
	v := m.vals["required_engine_version"]
	if v.Kind != yaml.ScalarNode {
		l.errf(f, v, "required_engine_version", "must be a version string like 0.57.0")
		return
	}
	s := v.Value
	if n, err := strconv.Atoi(s); err == nil && n >= 0 {
		s = fmt.Sprintf("0.%d.0", n)
	}
	req, ok := parseSemver(s)
	if !ok {
		l.errf(f, v, "required_engine_version", "invalid version %q", v.Value)
		return
	}
	have, _ := parseSemver(EngineVersion)
	if req[0] != have[0] || req[1] > have[1] || (req[1] == have[1] && req[2] > have[2]) {
		l.errf(f, v, "required_engine_version", "rules require engine version %s, but this engine is %s", s, EngineVersion)
	}
}

func (l *loader) name(f *srcFile, m *mapping, kind string) (string, bool) {
	s, v, ok := l.str(f, m, kind, kind)
	if !ok {
		return "", false
	}
	if strings.TrimSpace(s) == "" {
		l.errf(f, v, kind, "%s name must not be empty", kind)
		return "", false
	}
	return s, true
}

func (l *loader) list(f *srcFile, m *mapping) {
	name, ok := l.name(f, m, "list")
	if !ok {
		return
	}
	item := fmt.Sprintf("list %q", name)
	l.checkKeys(f, m, item, "list", "items", "append", "override")
	if strings.ContainsAny(name, "()\"' \t\n=,") {
		l.warnf(f, m.vals["list"], item, "list name contains characters that prevent its use in conditions")
	}
	legacy, _ := l.boolean(f, m, "append", item)
	ov, good := l.overrides(f, m, item, []string{"items"}, []string{"items"})
	if !good {
		return
	}
	var items []string
	var at []srcPos
	itemsNode, hasItems := m.vals["items"]
	if hasItems {
		if items, ok = l.strList(f, itemsNode, "items", item); !ok {
			return
		}
		if itemsNode.Kind == yaml.SequenceNode { // else null: no items
			at = make([]srcPos, len(itemsNode.Content))
			for i, e := range itemsNode.Content {
				at[i] = srcPos{f, deref(e)}
			}
		}
	}
	prev := l.lists[name]
	if prev != nil && l.tooManyChanges(&prev.changes, f, m, item) {
		return
	}
	switch {
	case legacy && ov != nil:
		l.errf(f, m.keys["append"], item, "'append' and 'override' cannot be used together")
	case legacy:
		l.warnf(f, m.keys["append"], item, "'append' is deprecated, use 'override: {items: append}'")
		if prev == nil {
			l.errf(f, m.node, item, "list has 'append' but no list by that name is defined before")
			return
		}
		prev.items, prev.at = append(prev.items, items...), append(prev.at, at...)
	case ov != nil:
		if prev == nil {
			l.errf(f, m.node, item, "list has 'override' but no list by that name is defined before")
			return
		}
		if ov["items"] == "append" {
			prev.items, prev.at = append(prev.items, items...), append(prev.at, at...)
		} else {
			prev.items, prev.at = items, at
		}
	default:
		if !hasItems {
			l.errf(f, m.node, item, "missing required key 'items'")
			return
		}
		if prev != nil {
			prev.items, prev.at, prev.file, prev.node = items, at, f, m.node
			return
		}
		d := &listDef{name: name, index: len(l.lorder), items: items, at: at, file: f, node: m.node}
		l.lists[name] = d
		l.lorder = append(l.lorder, d)
	}
}

func (l *loader) macro(f *srcFile, m *mapping) {
	name, ok := l.name(f, m, "macro")
	if !ok {
		return
	}
	item := fmt.Sprintf("macro %q", name)
	l.checkKeys(f, m, item, "macro", "condition", "append", "override")
	if !macroNameRE.MatchString(name) {
		l.warnf(f, m.vals["macro"], item, "macro name should match [a-zA-Z]+[a-zA-Z0-9_]* to be usable in conditions")
	}
	legacy, _ := l.boolean(f, m, "append", item)
	ov, good := l.overrides(f, m, item, []string{"condition"}, []string{"condition"})
	if !good {
		return
	}
	cond, condNode, hasCond := l.str(f, m, "condition", item)
	if m.has("condition") && !hasCond {
		return
	}
	prev := l.macros[name]
	if prev != nil && l.tooManyChanges(&prev.changes, f, m, item) {
		return
	}
	switch {
	case legacy && ov != nil:
		l.errf(f, m.keys["append"], item, "'append' and 'override' cannot be used together")
	case legacy || ov != nil:
		if legacy {
			l.warnf(f, m.keys["append"], item, "'append' is deprecated, use 'override: {condition: append}'")
		}
		if prev == nil {
			l.errf(f, m.node, item, "macro has 'append' or 'override' but no macro by that name is defined before")
			return
		}
		if !hasCond {
			l.errf(f, m.node, item, "missing required key 'condition'")
			return
		}
		if legacy || ov["condition"] == "append" {
			prev.cond.add(" ", f, condNode, false)
			prev.cond.add(cond, f, condNode, true)
		} else {
			prev.cond = newText(cond, f, condNode)
		}
	default:
		if !hasCond {
			l.errf(f, m.node, item, "missing required key 'condition'")
			return
		}
		if prev != nil {
			prev.cond, prev.file, prev.node = newText(cond, f, condNode), f, m.node
			return
		}
		d := &macroDef{name: name, index: len(l.morder), cond: newText(cond, f, condNode), file: f, node: m.node}
		l.macros[name] = d
		l.morder = append(l.morder, d)
	}
}

var macroNameRE = regexp.MustCompile(`^[a-zA-Z]+[a-zA-Z0-9_]*$`)

func newText(s string, f *srcFile, n *yaml.Node) *srcText {
	t := &srcText{}
	t.add(s, f, n, true)
	return t
}

var ruleKeys = []string{"rule", "condition", "output", "desc", "priority", "source", "enabled", "tags", "exceptions",
	"override", "append", "warn_evttypes", "skip-if-unknown-filter", "capture", "capture_duration"}

var (
	ruleAppendable  = []string{"condition", "output", "desc", "tags", "exceptions"}
	ruleReplaceable = []string{"condition", "output", "desc", "priority", "capture", "capture_duration", "tags",
		"exceptions", "enabled", "warn_evttypes", "skip-if-unknown-filter"}
)

func (l *loader) rule(f *srcFile, m *mapping) {
	name, ok := l.name(f, m, "rule")
	if !ok {
		return
	}
	item := fmt.Sprintf("rule %q", name)
	l.checkKeys(f, m, item, ruleKeys...)
	legacy, _ := l.boolean(f, m, "append", item)
	ov, good := l.overrides(f, m, item, ruleAppendable, ruleReplaceable)
	if !good {
		return
	}
	if legacy && ov != nil {
		l.errf(f, m.keys["append"], item, "'append' and 'override' cannot be used together")
		return
	}
	// Read every present key once, reporting all type errors.
	r := &ruleDef{name: name, file: f, node: m.node, enabled: true, warnEvttypes: true, source: "syscall"}
	bad := false
	var condNode *yaml.Node
	cond, condNode, hasCond := l.str(f, m, "condition", item)
	bad = bad || (m.has("condition") && !hasCond)
	out, outNode, hasOut := l.str(f, m, "output", item)
	bad = bad || (m.has("output") && !hasOut)
	r.output, r.outputNode = strings.TrimSpace(out), outNode
	r.outputLead = len(out) - len(strings.TrimLeft(out, " \t\r\n"))
	desc, _, hasDesc := l.str(f, m, "desc", item)
	bad = bad || (m.has("desc") && !hasDesc)
	r.desc = desc
	prio, prioNode, hasPrio := l.str(f, m, "priority", item)
	bad = bad || (m.has("priority") && !hasPrio)
	if hasPrio {
		p, alias, err := ParsePriority(prio)
		if err != nil {
			l.errf(f, prioNode, item, "invalid priority %q (want emergency, alert, critical, error, warning, notice, informational or debug)", prio)
			bad = true
		} else {
			r.priority = p
			if alias {
				l.warnf(f, prioNode, item, "priority %q is not a Falco priority; using %s", prio, p)
			}
		}
	}
	if src, srcNode, ok := l.str(f, m, "source", item); ok {
		r.source = src
		_ = srcNode
	} else if m.has("source") {
		bad = true
	}
	en, hasEn := l.boolean(f, m, "enabled", item)
	bad = bad || (m.has("enabled") && !hasEn)
	if hasEn {
		r.enabled = en
	}
	if v, ok := m.vals["tags"]; ok {
		tags, ok := l.strList(f, v, "tags", item)
		bad = bad || !ok
		r.tags = tags
	}
	if w, ok := l.boolean(f, m, "warn_evttypes", item); ok {
		r.warnEvttypes = w
	} else if m.has("warn_evttypes") {
		bad = true
	}
	if s, ok := l.boolean(f, m, "skip-if-unknown-filter", item); ok {
		r.skipUnknown = s
	} else if m.has("skip-if-unknown-filter") {
		bad = true
	}
	if _, ok := l.boolean(f, m, "capture", item); !ok && m.has("capture") {
		bad = true
	}
	if v, ok := m.vals["exceptions"]; ok {
		excs, ok := l.exceptions(f, v, item)
		bad = bad || !ok
		r.exceptions = excs
	}
	if bad {
		return
	}
	if hasCond {
		r.cond = newText(cond, f, condNode)
	}
	prev := l.rules[name]
	if prev != nil && l.tooManyChanges(&prev.changes, f, m, item) {
		return
	}

	switch {
	case legacy:
		l.warnf(f, m.keys["append"], item, "'append' is deprecated, use 'override'")
		if prev == nil {
			l.errf(f, m.node, item, "rule has 'append' but no rule by that name is defined before")
			return
		}
		for _, k := range []string{"output", "desc", "priority", "tags", "enabled", "source"} {
			if m.has(k) {
				l.errf(f, m.keys[k], item, "'append: true' can only append 'condition' and 'exceptions', not %q", k)
				return
			}
		}
		if hasCond {
			prev.cond.add(" ", f, condNode, false)
			prev.cond.add(cond, f, condNode, true)
		}
		l.appendExceptions(prev, r.exceptions, item)
	case ov != nil:
		if prev == nil {
			l.errf(f, m.node, item, "rule has 'override' but no rule by that name is defined before")
			return
		}
		for k, mode := range ov {
			app := mode == "append"
			switch k {
			case "condition":
				if app {
					prev.cond.add(" ", f, condNode, false)
					prev.cond.add(cond, f, condNode, true)
				} else {
					prev.cond = r.cond
				}
			case "output":
				if app {
					prev.output = strings.TrimSpace(prev.output + " " + r.output)
				} else {
					prev.output = r.output
				}
				prev.outputNode, prev.outputLead = r.outputNode, -1 // composed: no exact positions
			case "desc":
				if app {
					prev.desc += " " + r.desc
				} else {
					prev.desc = r.desc
				}
			case "priority":
				prev.priority = r.priority
			case "tags":
				if app {
					for _, t := range r.tags {
						if !contains(prev.tags, t) {
							prev.tags = append(prev.tags, t)
						}
					}
				} else {
					prev.tags = r.tags
				}
			case "exceptions":
				if app {
					l.appendExceptions(prev, r.exceptions, item)
				} else {
					prev.exceptions = r.exceptions
				}
			case "enabled":
				prev.enabled = r.enabled
			case "warn_evttypes":
				prev.warnEvttypes = r.warnEvttypes
			case "skip-if-unknown-filter":
				prev.skipUnknown = r.skipUnknown
			}
		}
	case !hasCond && !hasOut && !hasDesc && !hasPrio:
		if !hasEn {
			l.errf(f, m.node, item, "missing required keys 'condition', 'output', 'desc' and 'priority'")
			return
		}
		if prev == nil {
			l.errf(f, m.node, item, "rule only sets 'enabled' but no rule by that name is defined before")
			return
		}
		l.warnf(f, m.keys["enabled"], item, "an item with only 'enabled' is deprecated, use 'override: {enabled: replace}'")
		prev.enabled = en
	default:
		missing := []string{}
		for _, k := range []string{"condition", "output", "desc", "priority"} {
			if !m.has(k) {
				missing = append(missing, "'"+k+"'")
			}
		}
		if len(missing) > 0 {
			l.errf(f, m.node, item, "missing required key %s", strings.Join(missing, ", "))
			return
		}
		seen := map[string]bool{}
		for _, e := range r.exceptions {
			if seen[e.name] {
				l.warnf(e.file, e.node, item, "duplicate exception name %q", e.name)
			}
			seen[e.name] = true
		}
		if prev != nil {
			r.index = prev.index
			*prev = *r
			return
		}
		r.index = len(l.rorder)
		l.rules[name] = r
		l.rorder = append(l.rorder, r)
	}
}

var excOps = map[string]bool{"=": true, "==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true,
	"contains": true, "icontains": true, "bcontains": true, "startswith": true, "bstartswith": true,
	"endswith": true, "glob": true, "iglob": true, "pmatch": true, "in": true, "intersects": true, "regex": true}

func (l *loader) exceptions(f *srcFile, v *yaml.Node, item string) ([]*excDef, bool) {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, true
	}
	if v.Kind != yaml.SequenceNode {
		l.errf(f, v, item, "exceptions must be a list, got %s", kindName(v))
		return nil, false
	}
	ok := true
	var out []*excDef
	for _, en := range v.Content {
		en = deref(en)
		m, good := l.mapping(f, en, item)
		if !good {
			ok = false
			continue
		}
		e := &excDef{file: f, node: en}
		name, _, has := l.str(f, m, "name", item)
		if !has {
			if !m.has("name") {
				l.errf(f, en, item, "exception has no 'name'")
			}
			ok = false
			continue
		}
		e.name = name
		l.checkKeys(f, m, item, "name", "fields", "comps", "values")
		if fv, has := m.vals["fields"]; has {
			if e.fields, e.fieldList, good = l.oneOrList(f, fv, item, name, "fields", "a field"); !good {
				ok = false
				if !e.fieldList {
					continue
				}
			}
		}
		if cv, has := m.vals["comps"]; has {
			var list bool
			if e.comps, list, good = l.oneOrList(f, cv, item, name, "comps", "an operator"); !good {
				ok = false
				if !list {
					continue
				}
			}
			for i, c := range e.comps {
				c = strings.TrimSpace(c)
				e.comps[i] = c
				if !excOps[c] {
					l.errf(f, cv, item, "exception %q: %q is not a supported operator", name, c)
					ok = false
				}
			}
			if e.fields != nil && len(e.comps) != len(e.fields) {
				l.errf(f, cv, item, "exception %q: fields and comps lists must have the same length", name)
				ok = false
			}
		} else if e.fields != nil {
			for range e.fields {
				if e.fieldList {
					e.comps = append(e.comps, "=")
				} else {
					e.comps = append(e.comps, "in")
				}
			}
		}
		if vv, has := m.vals["values"]; has && !(vv.Kind == yaml.ScalarNode && vv.Tag == "!!null") {
			if vv.Kind != yaml.SequenceNode {
				l.errf(f, vv, item, "exception %q: values must be a list", name)
				ok = false
				continue
			}
			if !l.countValues(len(vv.Content), item) {
				ok = false
				continue
			}
			for _, tv := range vv.Content {
				tv = deref(tv)
				tuple, good := l.excTuple(f, tv, e, item)
				if !good {
					ok = false
					continue
				}
				e.values = append(e.values, tuple)
			}
		}
		out = append(out, e)
	}
	return out, ok
}

// oneOrList reads an exception key that holds one string or a list of them
// (list reports which); anything else is an error naming the exception.
func (l *loader) oneOrList(f *srcFile, v *yaml.Node, item, exc, key, one string) (vals []string, list, ok bool) {
	switch {
	case v.Kind == yaml.SequenceNode:
		vals, ok = l.strList(f, v, "exception "+key, item)
		return vals, true, ok
	case v.Kind == yaml.ScalarNode && v.Tag != "!!null":
		return []string{v.Value}, false, true
	}
	l.errf(f, v, item, "exception %q: %s must be %s or a list of them", exc, key, one)
	return nil, false, false
}

func (l *loader) excTuple(f *srcFile, tv *yaml.Node, e *excDef, item string) ([]excVal, bool) {
	val := func(n *yaml.Node) (excVal, bool) {
		n = deref(n)
		if n.Kind == yaml.SequenceNode {
			items, ok := l.strList(f, n, "exception values", item)
			return excVal{items: items, isList: true}, ok
		}
		if n.Kind != yaml.ScalarNode {
			l.errf(f, n, item, "exception %q: values must be strings or lists of strings", e.name)
			return excVal{}, false
		}
		return excVal{items: []string{n.Value}}, true
	}
	if (!e.fieldList && e.fields != nil) || (e.fields == nil && tv.Kind == yaml.ScalarNode) {
		v, ok := val(tv)
		return []excVal{v}, ok
	}
	if tv.Kind != yaml.SequenceNode {
		l.errf(f, tv, item, "exception %q: each value must be a list with one entry per field", e.name)
		return nil, false
	}
	if !l.countValues(len(tv.Content), item) {
		return nil, false
	}
	if e.fields != nil && len(tv.Content) != len(e.fields) {
		l.errf(f, tv, item, "exception %q: fields and values lists must have the same length (%d fields, %d values)", e.name, len(e.fields), len(tv.Content))
		return nil, false
	}
	var tuple []excVal
	for _, n := range tv.Content {
		v, ok := val(n)
		if !ok {
			return nil, false
		}
		tuple = append(tuple, v)
	}
	return tuple, true
}

func (l *loader) appendExceptions(r *ruleDef, add []*excDef, item string) {
	byName := make(map[string]*excDef, len(r.exceptions))
	for _, p := range r.exceptions {
		byName[p.name] = p // the last of a name, as before
	}
	for _, e := range add {
		prev := byName[e.name]
		if prev == nil {
			if e.fields == nil || e.values == nil {
				l.errf(e.file, e.node, item, "exception %q is new: it needs 'fields' and 'values'", e.name)
				continue
			}
			r.exceptions = append(r.exceptions, e)
			byName[e.name] = e
			continue
		}
		if e.fields != nil || e.comps != nil {
			l.errf(e.file, e.node, item, "exception %q already exists: only 'values' can be appended", e.name)
			continue
		}
		for _, tv := range e.values {
			if len(tv) != len(prev.fields) && prev.fieldList {
				l.errf(e.file, e.node, item, "exception %q: fields and values lists must have the same length", e.name)
				continue
			}
			prev.values = append(prev.values, tv)
		}
	}
}

// exceptionText builds exactly Falco's exception condition text for e
// (build_rule_exception_infos), "" when it contributes nothing. Note the
// spacing quirks ("( f1 = a and  f2 = b)"), kept so conditions read the
// same as in Falco's own diagnostics.
func exceptionText(e *excDef) string {
	if len(e.fields) == 0 {
		return ""
	}
	var b strings.Builder // one builder: exceptions may hold many values
	if !e.fieldList {
		for _, tv := range e.values {
			for _, it := range tv[0].items {
				if b.Len() == 0 {
					b.WriteString("(" + e.fields[0] + " " + e.comps[0] + " (")
				} else {
					b.WriteString(", ")
				}
				b.WriteString(quoteItem(it))
			}
		}
		if b.Len() > 0 {
			b.WriteString("))")
		}
		return b.String()
	}
	b.WriteString("(")
	for _, tv := range e.values {
		if b.Len() != 1 {
			b.WriteString(" or ")
		}
		b.WriteString("(")
		for k, v := range tv {
			if k > 0 {
				b.WriteString(" and ")
			}
			b.WriteString(" " + e.fields[k] + " " + e.comps[k] + " ")
			switch {
			case v.isList:
				b.WriteString("(")
				start := b.Len()
				for _, it := range v.items {
					if b.Len() != start {
						b.WriteString(", ")
					}
					b.WriteString(quoteItem(it))
				}
				b.WriteString(")")
			case isListOp(e.comps[k]):
				istr := v.items[0]
				if !strings.HasPrefix(istr, "(") {
					istr = "(" + istr + ")"
				}
				b.WriteString(istr)
			default:
				b.WriteString(quoteItem(v.items[0]))
			}
		}
		b.WriteString(")")
	}
	b.WriteString(")")
	if b.Len() == 2 {
		return ""
	}
	return b.String()
}
