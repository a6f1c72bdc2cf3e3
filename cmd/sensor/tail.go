package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/tail"
)

func newTailCmd() *cobra.Command {
	var (
		cfg   tail.Config
		since time.Duration
		color string
	)
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Follow alerts from the NATS JetStream alert stream",
		Long: `Follow alerts from the JetStream alert stream (the embedded broker of a local
sensor by default). Without --since or --all only new alerts are shown.
Control characters and terminal escapes from event data are shown escaped
(ESC as \x1b).`,
		Example: `  sensor tail --priority warning
  sensor tail --since 1h --rule '*shell*' --container web
  sensor tail --all --json | jq .output`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Conn.FromEnv()
			if since < 0 {
				return fmt.Errorf("tail: --since must be positive")
			}
			if since > 0 {
				cfg.Start = time.Now().Add(-since)
			}
			switch color {
			case "always":
				cfg.Color = true
			case "never":
				cfg.Color = false
			case "auto":
				cfg.Color = isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == ""
			default:
				return fmt.Errorf("tail: --color must be auto, always or never, not %q", color)
			}
			cfg.Out, cfg.Status = cmd.OutOrStdout(), cmd.ErrOrStderr()
			t, err := tail.New(cfg)
			if err != nil {
				return err
			}
			if err := t.Run(cmd.Context()); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitCode(1)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	cfg.Conn.URL = output.DefaultNATSURL
	cfg.Conn.RegisterFlags(fs)
	fs.StringVar(&cfg.Stream, "stream", output.DefaultStream, "JetStream stream holding the alerts")
	fs.StringVar(&cfg.Filter.MinPriority, "priority", "", "show only alerts at least this severe (emergency … debug)")
	fs.StringVar(&cfg.Filter.Rule, "rule", "", "show only rules matching this glob (case-insensitive, * and ?)")
	fs.StringVar(&cfg.Filter.Container, "container", "", "show only this container (name, or id prefix)")
	fs.StringVar(&cfg.Filter.Host, "host", "", "show only hosts matching this glob")
	fs.DurationVar(&since, "since", 0, "replay alerts stored in the last DURATION (e.g. 15m), then follow")
	fs.BoolVar(&cfg.All, "all", false, "replay the whole stream, then follow")
	fs.BoolVar(&cfg.JSON, "json", false, "print the raw JSON alert lines")
	fs.StringVar(&color, "color", "auto", "colorize: auto (when stdout is a terminal), always or never")
	cmd.MarkFlagsMutuallyExclusive("since", "all")
	return cmd
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
