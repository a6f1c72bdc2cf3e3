package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoContainerdClientLinked guards the sensor's resident memory: the
// enricher talks to containerd's API services directly. containerd's client
// library would link ~140 more packages (content, snapshots, images, OCI,
// tracing) whose code pages stay resident, and Go's plugin package, which
// makes a cgo build export every symbol to the dynamic loader (12 MiB more
// of the binary resident at idle).
func TestNoContainerdClientLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "plugin" || strings.HasPrefix(p, "github.com/containerd/containerd/") && !strings.HasPrefix(p, "github.com/containerd/containerd/api/") {
			t.Errorf("the sensor links %s", p)
		}
	}
}
