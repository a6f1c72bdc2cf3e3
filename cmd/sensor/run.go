package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "run (not yet wired)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("run: not yet wired")
		},
	}
}
