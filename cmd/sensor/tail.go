package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/tail"
)

// addNATSConnFlags registers the NATS connection flags shared by `tail` and
// `run`; call natsConnEnv after parsing.
func addNATSConnFlags(fs *pflag.FlagSet, c *output.NATSConn) {
	fs.StringVar(&c.URL, "nats-url", output.DefaultNATSURL, "NATS server URL(s), comma-separated (nats://, tls://)")
	fs.StringVar(&c.CAFile, "nats-ca", "", "CA certificate (PEM) to verify the NATS server")
	fs.StringVar(&c.CertFile, "nats-cert", "", "client certificate (PEM) for mutual TLS")
	fs.StringVar(&c.KeyFile, "nats-key", "", "client key (PEM) for mutual TLS")
	fs.StringVar(&c.User, "nats-user", "", "NATS user name")
	fs.StringVar(&c.Password, "nats-password", "", "NATS password (or $TRIPLINE_NATS_PASSWORD, which keeps it out of the process list)")
	fs.StringVar(&c.Token, "nats-token", "", "NATS token (or $TRIPLINE_NATS_TOKEN)")
	fs.StringVar(&c.NKeySeedFile, "nats-nkey", "", "NATS nkey seed file")
	fs.StringVar(&c.CredsFile, "nats-creds", "", "NATS .creds file (user JWT + seed, operator mode)")
}

// natsConnEnv fills secrets not given as flags from the environment.
func natsConnEnv(c *output.NATSConn) {
	if c.Password == "" {
		c.Password = os.Getenv("TRIPLINE_NATS_PASSWORD")
	}
	if c.Token == "" {
		c.Token = os.Getenv("TRIPLINE_NATS_TOKEN")
	}
}

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
			natsConnEnv(&cfg.Conn)
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
	addNATSConnFlags(fs, &cfg.Conn)
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
