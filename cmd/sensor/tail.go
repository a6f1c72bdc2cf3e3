package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newTailCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "tail",
		Short: "tail (not yet wired)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("tail: not yet wired")
		},
	}
}
