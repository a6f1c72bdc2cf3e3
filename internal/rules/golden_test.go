package rules

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// TestInvalidGolden loads each testdata/invalid/*.yaml and compares every
// error (file:line:col, item, message, caret block) with its .golden file.
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) < 30 {
		t.Fatalf("want at least 30 invalid cases, got %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, rep, err := LoadFiles([]string{f}, Options{})
			if err == nil || len(rep.Errors) == 0 {
				t.Fatalf("expected errors, got none")
			}
			var b strings.Builder
			for _, d := range rep.Errors {
				if d.File != f || d.Line < 1 || d.Col < 1 || d.Message == "" {
					t.Errorf("error without a position: %+v", d)
				}
				b.WriteString(d.Error())
				b.WriteString("\n")
			}
			testenv.Golden(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(b.String()), *update)
		})
	}
}
