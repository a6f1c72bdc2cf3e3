package rules

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/testenv"
)

// TestValidGolden loads each testdata/valid/*.yaml and compares a summary
// (rules with priority, state, types and final condition; warnings) with
// its .golden file.
func TestValidGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/valid/*.yaml")
	if len(files) == 0 {
		t.Fatal("no valid cases")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			rs, rep, err := LoadFiles([]string{f}, Options{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "compiled=%d disabled=%d skipped=%d\n", rep.Compiled, rep.Disabled, len(rep.Skipped))
			for _, r := range rs.Rules() {
				fmt.Fprintf(&b, "rule %q priority=%s enabled=%v tags=%v types=%v\n", r.Name, r.Priority, r.Enabled, r.Tags, r.Types())
				fmt.Fprintf(&b, "  condition: %s\n", strings.ReplaceAll(r.Condition, "\n", "\\n"))
				fmt.Fprintf(&b, "  output: %s\n", r.Output)
				if r.Skipped != "" {
					fmt.Fprintf(&b, "  skipped: %s\n", r.Skipped)
				}
			}
			for _, w := range rep.Warnings {
				fmt.Fprintf(&b, "warning: %s\n", w.Error())
			}
			testenv.Golden(t, strings.TrimSuffix(f, ".yaml")+".golden", []byte(b.String()), *update)
		})
	}
}
