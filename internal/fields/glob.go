package fields

// Glob reports whether s matches the shell pattern like fnmatch(3) without
// FNM_PATHNAME: '*' matches any run of bytes including '/', '?' one byte,
// [...] a class ('!' or '^' negates, ranges a-z), '\' escapes. fold makes
// the match ASCII case-insensitive (iglob). It never allocates and runs in
// O(len(pattern)*len(s)) worst case.
func Glob(pattern, s string, fold bool) bool {
	px, sx := 0, 0
	starP, starS := -1, -1
	for sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				px++
				sx++
				continue
			case '[':
				if ok, n, valid := matchClass(pattern[px:], s[sx], fold); valid {
					if ok {
						px += n
						sx++
						continue
					}
				} else if eq(c, s[sx], fold) { // unterminated class: literal '['
					px++
					sx++
					continue
				}
			case '\\':
				if px+1 < len(pattern) {
					if eq(pattern[px+1], s[sx], fold) {
						px += 2
						sx++
						continue
					}
				} else if eq(c, s[sx], fold) {
					px++
					sx++
					continue
				}
			default:
				if eq(c, s[sx], fold) {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func eq(a, b byte, fold bool) bool {
	if fold {
		return lower(a) == lower(b)
	}
	return a == b
}

// matchClass matches c against the class at the start of p ("[...]").
// n is the class length; valid is false when the class is unterminated.
func matchClass(p string, c byte, fold bool) (ok bool, n int, valid bool) {
	i := 1
	neg := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		neg = true
		i++
	}
	matched := false
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return matched != neg, i + 1, true
		}
		first = false
		lo := p[i]
		if lo == '\\' && i+1 < len(p) {
			i++
			lo = p[i]
		}
		i++
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			hi = p[i+1]
			if hi == '\\' && i+2 < len(p) {
				hi = p[i+2]
				i++
			}
			i += 2
		}
		if lo <= c && c <= hi {
			matched = true
		} else if fold {
			lc := lower(c)
			uc := lc
			if 'a' <= lc && lc <= 'z' {
				uc = lc - ('a' - 'A')
			}
			if (lo <= lc && lc <= hi) || (lo <= uc && uc <= hi) {
				matched = true
			}
		}
	}
	return false, 0, false
}
