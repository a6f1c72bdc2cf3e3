package rules

import (
	"container/heap"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// srcFile is one loaded rules file.
type srcFile struct {
	name  string
	data  []byte
	lines []int // byte offset of each line start, built lazily
}

func (f *srcFile) lineStarts() []int {
	if f.lines == nil {
		f.lines = []int{0}
		for i, c := range f.data {
			if c == '\n' {
				f.lines = append(f.lines, i+1)
			}
		}
	}
	return f.lines
}

// lineCol converts a byte offset to 1-based line and column.
func (f *srcFile) lineCol(off int) (int, int) {
	ls := f.lineStarts()
	i := sort.SearchInts(ls, off+1) - 1
	if i < 0 {
		i = 0
	}
	return i + 1, off - ls[i] + 1
}

// offsetOf converts a 1-based line/column to a byte offset.
func (f *srcFile) offsetOf(line, col int) int {
	ls := f.lineStarts()
	if line < 1 {
		return 0
	}
	if line > len(ls) {
		return len(f.data)
	}
	off := ls[line-1] + col - 1
	if off > len(f.data) {
		off = len(f.data)
	}
	if off < 0 {
		off = 0
	}
	return off
}

// scalarPos returns the file line/column of byte off inside the value of
// scalar node n, by aligning the decoded value with the raw text (folded
// and quoted scalars differ from their source in whitespace and escapes).
func (f *srcFile) scalarPos(n *yaml.Node, off int) (int, int) {
	if n == nil {
		return 1, 1
	}
	if f == nil || len(f.data) == 0 || n.Line == 0 {
		return n.Line, n.Column
	}
	raw := f.data
	j := f.offsetOf(n.Line, n.Column)
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		if k := strings.IndexByte(string(raw[j:]), '\n'); k >= 0 {
			j += k + 1
		}
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		j++
	}
	v := n.Value
	if off > len(v) {
		off = len(v)
	}
	for i := 0; i < off && j < len(raw); i++ {
		c := v[i]
		k := j
		for k < len(raw) && raw[k] != c && k-j < 64 {
			k++
		}
		if k < len(raw) && raw[k] == c {
			j = k + 1
		}
	}
	// Skip indentation / folding whitespace to land on the character itself.
	if off < len(v) && !isBlank(v[off]) {
		for k := j; k < len(raw) && k-j < 64; k++ {
			if raw[k] == v[off] {
				j = k
				break
			}
		}
	}
	if j > len(raw) {
		j = len(raw)
	}
	return f.lineCol(j)
}

// srcPart maps a span of a composed text to where it came from.
type srcPart struct {
	start, end int
	file       *srcFile
	node       *yaml.Node
	exact      bool // the span is node.Value itself (positions align)
}

// srcText is a condition as composed from the rules files (with appends and
// generated exception text), remembering the origin of each span.
type srcText struct {
	text  string
	parts []srcPart
}

func (t *srcText) add(s string, f *srcFile, n *yaml.Node, exact bool) {
	start := len(t.text)
	t.text += s
	t.parts = append(t.parts, srcPart{start: start, end: len(t.text), file: f, node: n, exact: exact})
}

// pos locates byte off of the composed text in its file.
func (t *srcText) pos(off int) (string, int, int) {
	if len(t.parts) == 0 {
		return "", 0, 0
	}
	p := t.parts[len(t.parts)-1]
	for _, q := range t.parts {
		if off < q.end {
			p = q
			break
		}
	}
	name := ""
	if p.file != nil {
		name = p.file.name
	}
	if p.node == nil {
		return name, 0, 0
	}
	if !p.exact {
		return name, p.node.Line, p.node.Column
	}
	l, c := p.file.scalarPos(p.node, off-p.start)
	return name, l, c
}

// exprSrc is the text actually parsed: srcText after list substitution.
// origin maps each byte back to srcText.
type exprSrc struct {
	text   string
	origin []int32
	orig   *srcText
}

func (e *exprSrc) origOffset(at int) int {
	if at >= 0 && at < len(e.origin) {
		return int(e.origin[at])
	}
	return len(e.orig.text)
}

// diag builds a located error for byte at of the parsed text.
func (e *exprSrc) diag(at int, item, msg string, caret bool) Diag {
	o := e.origOffset(at)
	file, line, col := e.orig.pos(o)
	d := Diag{File: file, Line: line, Col: col, Item: item, Message: msg}
	if caret {
		d.Snippet, d.Caret = snippet(e.orig.text, o)
	}
	return d
}

const listDelims = " \t\n\r(),="

func isListDelim(c byte) bool { return strings.IndexByte(listDelims, c) >= 0 }

// expandLists substitutes list names in text like Falco's resolve_list,
// one list at a time in definition order (so a list item naming a later
// list is expanded by that list's pass): a token delimited by start/end or
// one of ` \t\n\r(),=` that names the list is replaced by its items joined
// with ", " (items with a space are double-quoted); an empty list also
// removes an adjacent comma. use is called for each list substituted.
//
// Only the passes that can change the text run: those of lists named in it
// or in the items of a list substituted before. The text, and each pass
// over it, cost their length (what is scanned and parsed), taken from
// *budget; when that runs out, or the text grows beyond maxConditionLen,
// expansion stops and over reports it.
func expandLists(t *srcText, lists map[string]*listDef, budget *int, use func(*listDef)) (src *exprSrc, over bool) {
	text := t.text
	if *budget -= len(text); *budget < 0 {
		return &exprSrc{text: text, orig: t}, true
	}
	origin := make([]int32, len(text))
	for i := range origin {
		origin[i] = int32(i)
	}
	var pending listHeap
	queued := map[*listDef]bool{}
	queue := func(s string, after int) {
		forTokens(s, func(tok string) {
			if d, ok := lists[tok]; ok && d.index > after && !queued[d] {
				queued[d] = true
				heap.Push(&pending, d)
			}
		})
	}
	queue(text, -1)
	for pending.Len() > 0 {
		d := heap.Pop(&pending).(*listDef)
		if *budget -= len(text); *budget < 0 || len(text) > maxConditionLen {
			return &exprSrc{text: text, origin: origin, orig: t}, true
		}
		var used bool
		text, origin, used = substituteList(text, origin, d)
		*budget -= len(text) // what the pass wrote, which the parser reads
		if used {
			if use != nil {
				use(d)
			}
			for _, it := range d.expanded {
				queue(quoteItem(it), d.index) // the tokens later passes see
			}
		}
	}
	return &exprSrc{text: text, origin: origin, orig: t}, len(text) > maxConditionLen
}

// forTokens calls fn for each token of s delimited as expandLists does.
func forTokens(s string, fn func(string)) {
	for i := 0; i < len(s); {
		if isListDelim(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isListDelim(s[j]) {
			j++
		}
		fn(s[i:j])
		i = j
	}
}

// listHeap orders pending list passes by definition order.
type listHeap []*listDef

func (h listHeap) Len() int           { return len(h) }
func (h listHeap) Less(i, j int) bool { return h[i].index < h[j].index }
func (h listHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *listHeap) Push(x any)        { *h = append(*h, x.(*listDef)) }
func (h *listHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

func substituteList(src string, srcOrigin []int32, l *listDef) (string, []int32, bool) {
	var out []byte
	var origin []int32
	used := false
	emit := func(s string, o int32) {
		for i := 0; i < len(s); i++ {
			out = append(out, s[i])
			origin = append(origin, o)
		}
	}
	i := 0
	for i < len(src) {
		if isListDelim(src[i]) {
			out = append(out, src[i])
			origin = append(origin, srcOrigin[i])
			i++
			continue
		}
		j := i
		for j < len(src) && !isListDelim(src[j]) {
			j++
		}
		if src[i:j] != l.name {
			out = append(out, src[i:j]...)
			origin = append(origin, srcOrigin[i:j]...)
			i = j
			continue
		}
		used = true
		o := srcOrigin[i]
		if len(l.expanded) == 0 {
			// Remove a comma on the left (past blanks), else one on the right.
			k := len(out) - 1
			for k >= 0 && isBlank(out[k]) {
				k--
			}
			if k >= 0 && out[k] == ',' {
				out = out[:k]
				origin = origin[:k]
			} else {
				r := j
				for r < len(src) && isBlank(src[r]) {
					r++
				}
				if r < len(src) && src[r] == ',' {
					j = r + 1
				}
			}
			emit(" ", o)
			i = j
			continue
		}
		for n, it := range l.expanded {
			if n > 0 {
				emit(", ", o)
			}
			emit(quoteItem(it), o)
		}
		i = j
		if len(out) > maxConditionLen {
			break // the caller reports the condition as too long
		}
	}
	return string(out), origin, used
}

// quoteItem double-quotes a list item that contains a space and is not
// already quoted (Falco's quote_item).
func quoteItem(s string) string {
	if strings.Contains(s, " ") && !strings.HasPrefix(s, `"`) && !strings.HasPrefix(s, "'") {
		return `"` + s + `"`
	}
	return s
}
