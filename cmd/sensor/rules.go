package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newRulesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rules",
		Short: "rules (not yet wired)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return errors.New("rules: not yet wired")
		},
	}
}
