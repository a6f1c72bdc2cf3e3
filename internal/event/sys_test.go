package event

import (
	"strings"
	"testing"
)

// TestFlagsContaining checks the bits a text test on a flags parameter
// needs against the rendering, for every mode and a part of a name.
func TestFlagsContaining(t *testing.T) {
	mode, ok := LookupSysArg(TypeFchmodat, "mode")
	if !ok {
		t.Fatal("fchmodat has no mode")
	}
	for _, s := range []string{"S_ISUID", "S_ISGID", "S_IS", "USR", "S_IRWXU", "0x", "4", "S_IRUSR|S_IWUSR", "x"} {
		mask, ok := mode.FlagsContaining(s)
		for v := range uint64(0o20000) {
			text := string(AppendSysArg(nil, &Event{Type: TypeFchmodat, Sys: Sys{Args: [6]uint64{0, 0, v}}}, mode))
			if ok && strings.Contains(text, s) && v&mask == 0 {
				t.Fatalf("%q: mode %#o renders %q, which contains it, without a bit of %#o", s, v, text, mask)
			}
		}
		t.Logf("%q: mask %#o ok %v", s, mask, ok)
	}
	if m, ok := mode.FlagsContaining("S_ISUID"); !ok || m != 0o4000 {
		t.Errorf("S_ISUID: %#o %v", m, ok)
	}
	if _, ok := mode.FlagsContaining("4"); ok {
		t.Error(`"4" can be in the hexadecimal rest`)
	}
}
