package capture

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
	args, err := bpf2goArgs("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	// The same command as `go generate`, writing into dir.
	args = append([]string{args[0], args[1], args[2], "-go-package", "capture", "-output-dir", dir}, args[3:]...)
	cmd := exec.Command(args[0], args[1:]...)
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

// bpf2goArgs returns the bpf2go command of the //go:generate line in file,
// split like a shell would (double quotes group words).
func bpf2goArgs(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "//go:generate ")
		if !ok || !strings.HasPrefix(rest, "go tool bpf2go ") {
			continue
		}
		var args []string
		var cur strings.Builder
		quoted, inWord := false, false
		for _, r := range rest {
			switch {
			case r == '"':
				quoted, inWord = !quoted, true
			case r == ' ' && !quoted:
				if inWord {
					args = append(args, cur.String())
					cur.Reset()
				}
				inWord = false
			default:
				cur.WriteRune(r)
				inWord = true
			}
		}
		if inWord {
			args = append(args, cur.String())
		}
		return args, nil
	}
	return nil, fmt.Errorf("%s has no //go:generate go tool bpf2go line", file)
}
