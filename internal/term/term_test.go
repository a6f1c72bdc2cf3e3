package term

import (
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bash", "bash"},
		{"\x1b[2Jevil", `\x1b[2Jevil`},
		{"a\nb\tc\r", `a\nb\tc\r`},
		{`back\slash`, `back\\slash`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"héllo", "héllo"},
		{"rtl\u202eoverride", `rtl\u202eoverride`},
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "\x1b]0;title\x07", "ok", "\xc2\x9b", "\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Escape(s)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q", s)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("control byte %#x left in %q", c, out)
			}
		}
		for _, r := range out {
			if r >= 0x80 && r < 0xa0 {
				t.Fatalf("C1 control left in %q", out)
			}
		}
	})
}
