package deploy_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// lookPath finds an optional tool.
func lookPath(name string) (string, error) { return exec.LookPath(name) }

// runCmd runs a command with a deadline and returns its combined output.
func runCmd(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

func goRoot() string { return runtime.GOROOT() }

func TestMain(m *testing.M) {
	code := m.Run()
	if sensorDir != "" {
		os.RemoveAll(sensorDir)
	}
	os.Exit(code)
}
