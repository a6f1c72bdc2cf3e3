package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/ruletest"
	"github.com/tripline/tripline/internal/term"
)

func newRulesTestCmd() *cobra.Command {
	var live liveOptions
	cmd := &cobra.Command{
		Use:   "test [--live] PATH...",
		Short: "run rule tests (YAML files beside the rules) and report pass/fail with diffs",
		Long: `Runs rule test files (see docs/rule-authoring.md). Offline (the default) each
test's event is evaluated against the rules it names; no privileges needed.
With --live (root) each test's run: snippet is executed on the host or in a
container while the sensor is attached, and the expected rules must fire.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := ruletest.Collect(args)
			if err != nil {
				return err
			}
			var results []ruletest.Result
			if live.enabled {
				results, err = runLiveTests(cmd, files, live)
			} else {
				results, err = runOfflineTests(cmd.Context(), files, rules.Options{MaxFileBytes: live.maxBytes})
			}
			if err != nil {
				return err
			}
			if printResults(cmd.OutOrStdout(), results) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live.enabled, "live", false, "run each test's run: snippet with the sensor attached (root)")
	cmd.Flags().DurationVar(&live.wait, "wait", live.waitDefault(), "live: how long to wait for the expected alerts of a test")
	cmd.Flags().StringVar(&live.socket, "containerd-socket", config.Default().ContainerdSocket, "live: containerd socket for container tests")
	addRulesMaxBytes(cmd, &live.maxBytes)
	return cmd
}

func runOfflineTests(ctx context.Context, files []string, opts rules.Options) ([]ruletest.Result, error) {
	r := ruletest.Runner{Options: opts}
	var all []ruletest.Result
	for _, p := range files {
		f, err := ruletest.ParseFile(p)
		if err != nil {
			return nil, err
		}
		res, err := r.RunFileContext(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, res...)
	}
	return all, nil
}

// printResults prints one line per test, a diff under each failure, and a
// summary; it returns the number of failures.
func printResults(w io.Writer, results []ruletest.Result) int {
	failed, skipped := 0, 0
	for _, r := range results {
		name := term.Escape(r.Name)
		switch {
		case r.Skipped != "":
			skipped++
			fmt.Fprintf(w, "SKIP %s:%d %s (%s)\n", r.File, r.Line, name, term.Escape(r.Skipped))
			continue
		case r.Pass():
			fmt.Fprintf(w, "PASS %s:%d %s\n", r.File, r.Line, name)
			continue
		}
		failed++
		fmt.Fprintf(w, "FAIL %s:%d %s\n", r.File, r.Line, name)
		if r.Err != nil {
			fmt.Fprintf(w, "    error: %s\n", term.Escape(r.Err.Error()))
		}
		for _, m := range r.Missing {
			fmt.Fprintf(w, "    - %s (expected, did not fire)\n", term.Escape(m))
		}
		for _, x := range r.Extra {
			fmt.Fprintf(w, "    + %s (fired, not expected)\n", term.Escape(x))
		}
		for _, d := range r.FieldDiffs {
			fmt.Fprintf(w, "    ~ %s\n", term.Escape(d))
		}
	}
	passed := len(results) - failed - skipped
	fmt.Fprintf(w, "%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	return failed
}
