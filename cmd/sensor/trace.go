package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newTraceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "trace",
		Short: "trace (not yet wired)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("trace: not yet wired")
		},
	}
}
