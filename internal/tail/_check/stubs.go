package main

import "github.com/spf13/cobra"

func newRunCmd() *cobra.Command         { return &cobra.Command{Use: "run"} }
func newTraceCmd() *cobra.Command       { return &cobra.Command{Use: "trace"} }
func newRulesCmd() *cobra.Command       { return &cobra.Command{Use: "rules"} }
func newReplayCmd() *cobra.Command      { return &cobra.Command{Use: "replay"} }
func newHealthcheckCmd() *cobra.Command { return &cobra.Command{Use: "healthcheck"} }
