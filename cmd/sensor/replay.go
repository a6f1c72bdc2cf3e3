package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newReplayCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "replay",
		Short: "replay (not yet wired)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("replay: not yet wired")
		},
	}
}
