package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd probes a running sensor's /healthz; it exists because the
// minimal image has no curl (Dockerfile HEALTHCHECK).
func newHealthcheckCmd() *cobra.Command {
	addr := "127.0.0.1:9376"
	timeout := 3 * time.Second
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "exit 0 when the sensor at --addr reports healthy on /healthz",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s: %s", resp.Status, body)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", addr, "metrics address of the sensor")
	cmd.Flags().DurationVar(&timeout, "timeout", timeout, "how long to wait for an answer")
	return cmd
}
