package main

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/alert"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/pipeline"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/term"
)

func newReplayCmd() *cobra.Command {
	var (
		rulePaths []string
		asJSON    bool
		coalesce  bool
		maxBytes  int64
	)
	cmd := &cobra.Command{
		Use:   "replay --rules PATH FILE",
		Short: "evaluate recorded events (sensor trace --record) offline and print the alerts",
		Long: `Reads a recording made by 'sensor trace --record FILE' (one flat JSON event per
line, already enriched) and evaluates the rules on it, printing every alert.
Needs no privileges: record once on a real host, iterate on rules anywhere.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, rep, err := rules.LoadFilesContext(cmd.Context(), rulePaths, rules.Options{MaxFileBytes: maxBytes})
			if rep != nil {
				for _, w := range rep.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w.Error())
				}
				for _, e := range rep.Errors {
					fmt.Fprintln(cmd.ErrOrStderr(), "error:", e.Error())
				}
			}
			if err != nil {
				return fmt.Errorf("loading rules: %w", err)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			var sink output.Sink = output.NewStdout(cmd.OutOrStdout())
			publish := sink.Publish
			if !asJSON {
				w := cmd.OutOrStdout()
				publish = func(a *alert.Alert) { fmt.Fprintln(w, term.Escape(string(a.AppendOutputLine(nil)))) }
			}
			window := -1 * time.Second
			if coalesce {
				window = 0
			}
			p, err := pipeline.New(pipeline.Config{
				Source: pipeline.NewJSONLines(f), Rules: rs, Publish: publish, Coalesce: window,
			})
			if err != nil {
				return err
			}
			if err := p.Run(cmd.Context()); err != nil {
				return err
			}
			if err := sink.Close(); err != nil {
				return err
			}
			st := p.Stats()
			var n uint64
			for _, c := range st.Events {
				n += c
			}
			slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).Info("replay done",
				"events", n, "skipped_lines", st.Malformed, "alerts", st.Alerts)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&rulePaths, "rules", []string{"rules"}, "rule file or folder (repeatable)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print alerts as Falco JSON lines instead of text")
	cmd.Flags().BoolVar(&coalesce, "coalesce", false, "coalesce identical alerts as the daemon does")
	addRulesMaxBytes(cmd, &maxBytes)
	return cmd
}
