package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction with continuation lines joined.
type instruction struct {
	Line int
	Cmd  string // upper case
	Args string
}

// parseDockerfile is a small textual parser: enough to check the policy
// below, not a full BuildKit front end.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out  []instruction
		cur  strings.Builder
		line int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") || (text == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			line = n
		}
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(text)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{Line: line, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() != 0 {
		t.Fatalf("%s: dangling line continuation", path)
	}
	return out
}

// stages splits instructions at each FROM.
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.Cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

var secretName = regexp.MustCompile(`(?i)(pass|secret|token|cred|auth|private|api_?key|_key\b|^key\b)`)

// distrolessPinned matches distroless images, which publish no version tags;
// the Debian release in the name is the version.
var distrolessPinned = regexp.MustCompile(`^gcr\.io/distroless/[a-z]+-debian[0-9]+:[a-z0-9-]+(@sha256:[0-9a-f]{64})?$`)

func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "../Dockerfile")
	st := stages(ins)
	if len(st) < 2 {
		t.Fatalf("want a multi-stage build, have %d stage(s)", len(st))
	}
	for _, in := range ins {
		if in.Cmd == "FROM" && strings.Contains(in.Args, "$") {
			t.Errorf("line %d: FROM uses a variable; write the pinned image literally", in.Line)
		}
	}

	// Every base image pinned; the build stage on the Go version of go.mod.
	goVersion := goModVersion(t)
	for i, s := range st {
		fields := strings.Fields(s[0].Args)
		image := fields[0]
		if strings.HasPrefix(image, "--platform") && len(fields) > 1 {
			image = fields[1]
		}
		last := i == len(st)-1
		switch {
		case image == "scratch" && last:
		case distrolessPinned.MatchString(image) && !strings.HasSuffix(image, ":latest"):
		default:
			if err := checkImagePinned(image); err != nil {
				t.Errorf("line %d: %v", s[0].Line, err)
			}
		}
		if strings.HasPrefix(image, "golang:") {
			if want := "golang:" + goVersion + "-"; !strings.HasPrefix(image, want) {
				t.Errorf("line %d: build image %s does not match go.mod's go %s", s[0].Line, image, goVersion)
			}
		}
		if last && image != "scratch" && !strings.HasPrefix(image, "gcr.io/distroless/") {
			t.Errorf("line %d: final stage %s is neither distroless nor scratch", s[0].Line, image)
		}
	}

	final := st[len(st)-1]
	has := func(stage []instruction, cmd, substr string) bool {
		for _, in := range stage {
			if in.Cmd == cmd && strings.Contains(in.Args, substr) {
				return true
			}
		}
		return false
	}
	if !has(final, "HEALTHCHECK", `CMD ["/usr/bin/sensor", "healthcheck"`) {
		t.Error("final stage has no exec-form HEALTHCHECK running `sensor healthcheck`")
	}
	if !has(final, "ENTRYPOINT", `"/usr/bin/sensor"`) {
		t.Error("final stage does not run /usr/bin/sensor")
	}
	if !has(final, "COPY", "/etc/tripline/rules/") {
		t.Error("rules are not copied to /etc/tripline/rules")
	}
	var user string
	for _, in := range final {
		if in.Cmd == "USER" {
			user = in.Args
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER is %q; want a non-root user", user)
	}
	for _, label := range []string{"title", "description", "source", "version", "revision"} {
		if !has(final, "LABEL", "org.opencontainers.image."+label+"=") {
			t.Errorf("no org.opencontainers.image.%s label", label)
		}
	}

	// A static, reproducible binary.
	build := strings.Join(func() []string {
		var s []string
		for _, in := range ins {
			if in.Cmd == "RUN" || in.Cmd == "ENV" {
				s = append(s, in.Args)
			}
		}
		return s
	}(), "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "./cmd/sensor"} {
		if !strings.Contains(build, want) {
			t.Errorf("the build does not use %s", want)
		}
	}

	// Nothing that looks like a secret travels through ARG or ENV, where it
	// would be recorded in the image history.
	for _, in := range ins {
		if in.Cmd != "ARG" && in.Cmd != "ENV" {
			continue
		}
		for _, f := range strings.Fields(in.Args) {
			name, _, _ := strings.Cut(f, "=")
			if secretName.MatchString(name) {
				t.Errorf("line %d: %s %s looks like a secret; use a BuildKit secret mount", in.Line, in.Cmd, name)
			}
		}
	}

	// The healthcheck subcommand the HEALTHCHECK relies on exists.
	if !fileContains(t, "../cmd/sensor", `"healthcheck"`) {
		t.Error("cmd/sensor has no healthcheck subcommand, which the HEALTHCHECK runs")
	}
}

func TestSecretNamePattern(t *testing.T) {
	for name, secret := range map[string]bool{
		"NATS_PASSWORD": true, "GITHUB_TOKEN": true, "API_KEY": true, "NATS_CREDS": true, "SSH_PRIVATE": true,
		"AWS_SECRET_ACCESS_KEY": true, "VERSION": false, "REVISION": false, "GOFLAGS": false, "CGO_ENABLED": false,
		"GOTOOLCHAIN": false, "KEYBOARD": false,
	} {
		if got := secretName.MatchString(name); got != secret {
			t.Errorf("%s: secret=%v, want %v", name, got, secret)
		}
	}
}

// TestDockerignore checks that the allow-list .dockerignore lets in every
// directory the sensor's packages and embedded files live in, and that the
// Dockerfile copies them.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	var excluded []string
	first := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if first == "" {
			first = line
		}
		if p, ok := strings.CutPrefix(line, "!"); ok {
			allowed[strings.TrimSuffix(p, "/")] = true
		} else if line != "*" {
			excluded = append(excluded, line)
		}
	}
	if first != "*" {
		t.Fatalf(".dockerignore must start with * (an allow-list), starts with %q", first)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}

	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goCmd, "list", "-deps", "-f", `{{if .Module}}{{if eq .Module.Path "github.com/tripline/tripline"}}{{.Dir}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`, "./cmd/sensor")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		rel, err := filepath.Rel(root, fields[0])
		if err != nil {
			t.Fatal(err)
		}
		top := strings.Split(filepath.ToSlash(rel), "/")[0]
		if !allowed[top] {
			t.Errorf(".dockerignore does not allow %s/, which holds package %s", top, rel)
		}
		if !strings.Contains(string(dockerfile), "COPY "+top+"/ "+top+"/") {
			t.Errorf("the Dockerfile does not COPY %s/", top)
		}
		for _, f := range append([]string{"x.go"}, fields[1:]...) {
			p := filepath.ToSlash(filepath.Join(rel, f))
			for _, pat := range excluded {
				if dockerignoreExcludes(pat, p) {
					t.Errorf(".dockerignore pattern %q excludes %s, which the build needs", pat, p)
				}
			}
		}
	}
	for _, want := range []string{"go.mod", "go.sum", "rules"} {
		if !allowed[want] {
			t.Errorf(".dockerignore does not allow %s", want)
		}
	}
}

func goModVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go ([0-9.]+)\s*$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

// fileContains reports whether any non-test Go file in dir contains s.
func fileContains(t *testing.T, dir, s string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), s) {
			return true
		}
	}
	return false
}

// dockerignoreExcludes implements the two pattern shapes the project's
// .dockerignore uses: **/NAME/ (a directory anywhere) and **/GLOB (a file
// name anywhere).
func dockerignoreExcludes(pat, path string) bool {
	rest, ok := strings.CutPrefix(pat, "**/")
	if !ok {
		m, _ := filepath.Match(pat, path)
		return m
	}
	if dir, isDir := strings.CutSuffix(rest, "/"); isDir {
		return strings.Contains("/"+path, "/"+dir+"/")
	}
	m, _ := filepath.Match(rest, filepath.Base(path))
	return m
}

func TestDockerignoreExcludes(t *testing.T) {
	for _, tt := range []struct {
		pat, path string
		want      bool
	}{
		{"**/testdata/", "internal/x/testdata/a.json", true},
		{"**/testdata/", "internal/x/a.go", false},
		{"**/*_test.go", "internal/x/a_test.go", true},
		{"**/*_test.go", "internal/x/a.go", false},
		{"**/*.key", "internal/capture/tripline_x86_bpfel.o", false},
		{"**/*.creds", "a/b/c.creds", true},
	} {
		if got := dockerignoreExcludes(tt.pat, tt.path); got != tt.want {
			t.Errorf("dockerignoreExcludes(%q, %q) = %v", tt.pat, tt.path, got)
		}
	}
}
