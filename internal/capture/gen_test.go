package capture

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/testenv"
)

// TestGeneratedFresh fails when the committed BPF objects do not match the
// sources: the recorded source hashes must match, and when clang is present
// a fresh bpf2go build into a temp dir must be byte-identical (the build is
// deterministic for a given clang).
func TestGeneratedFresh(t *testing.T) {
	f, err := os.Open("bpfsrc.sha256")
	if err != nil {
		t.Fatalf("missing bpfsrc.sha256 (run `make generate`): %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			t.Fatalf("bad line in bpfsrc.sha256: %q", sc.Text())
		}
		b, err := os.ReadFile(fields[1])
		if err != nil {
			t.Fatalf("reading %s: %v", fields[1], err)
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != fields[0] {
			t.Errorf("%s changed since the BPF objects were generated: run `make generate`", fields[1])
		}
		n++
	}
	if n == 0 {
		t.Fatal("bpfsrc.sha256 lists no sources")
	}

	_, errClang := exec.LookPath("clang")
	testenv.Require(t, errClang == nil, "clang (apt install clang) to rebuild the BPF objects")
	dir := t.TempDir()
	cmd := exec.Command("go", "tool", "bpf2go", "-go-package", "capture", "-output-dir", dir,
		"-tags", "linux", "-cc", "clang", "-cflags", "-O2 -g -Wall -Werror", "-target", "amd64,arm64",
		"-type", "tl_event", "-type", "tl_config", "-type", "tl_stats", "-type", "tl_enter",
		"tripline", "../../bpf/tripline.bpf.c", "--", "-I../../bpf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bpf2go: %v\n%s", err, out)
	}
	for _, name := range []string{"tripline_x86_bpfel.o", "tripline_arm64_bpfel.o", "tripline_x86_bpfel.go", "tripline_arm64_bpfel.go"} {
		fresh, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s is stale: run `make generate`", name)
		}
	}
}
