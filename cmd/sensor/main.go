// Command sensor is the Tripline runtime security sensor. main only wires the
// pipeline stages together; each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/rules"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			os.Exit(int(ec))
		}
		if errors.Is(err, rules.ErrTooLarge) {
			err = fmt.Errorf("%w (see --rules-max-bytes)", err)
		}
		fmt.Fprintln(os.Stderr, "sensor:", err)
		os.Exit(1)
	}
}

// exitCode lets a subcommand end with a specific status after printing its
// own report (e.g. `rules validate` exits 1 on errors).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "sensor",
		Short:         "Tripline runtime security sensor",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	rules := newRulesCmd()
	rules.AddCommand(newRulesTestCmd())
	root.AddCommand(
		newRunCmd(),
		newTraceCmd(),
		newTailCmd(),
		rules,
		newReplayCmd(),
		newHealthcheckCmd(),
	)
	return root
}
