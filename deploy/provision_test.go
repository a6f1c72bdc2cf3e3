package deploy_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/testenv"
)

// liveTestCommand is the one command the docs and the provisioning script
// give rule authors for the live rule tests in the VM.
const liveTestCommand = "sudo /vagrant/bin/sensor rules test --live /home/vagrant/tripline/rules/tests"

// runProvision runs scripts/provision.sh on this machine with the repository
// as PROVISION_REPO and without the (slow, cold-cache) build step.
func runProvision(t *testing.T, args ...string) (string, error) {
	t.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", append([]string{filepath.Join(repo, "scripts", "provision.sh")}, args...)...)
	cmd.Env = append(os.Environ(), "PROVISION_REPO="+repo, "PROVISION_BUILD=0", "PROVISION_RULES=")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestProvisionIdempotent runs the provisioning script like CI and the VM
// do: it must succeed, and a second run must find nothing to install.
func TestProvisionIdempotent(t *testing.T) {
	testenv.RequireRoot(t)
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		testenv.Require(t, false, "a Debian system (dpkg-query) for scripts/provision.sh")
	}
	first, err := runProvision(t)
	if err != nil {
		t.Fatalf("first run: %v\n%s", err, first)
	}
	second, err := runProvision(t)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, second)
	}
	for _, action := range []string{"installing", "enabling", "starting"} {
		if strings.Contains(second, "provision: "+action) {
			t.Errorf("second run is not a no-op (%s):\n%s", action, second)
		}
	}
	for _, want := range []string{"provision: packages: all present", "rules test --live"} {
		if !strings.Contains(second, want) {
			t.Errorf("second run output lacks %q:\n%s", want, second)
		}
	}
	check, err := runProvision(t, "--check")
	if err != nil || !strings.Contains(check, "check: nothing to do") {
		t.Errorf("--check after provisioning: %v\n%s", err, check)
	}
}

func TestProvisionRejectsBadInput(t *testing.T) {
	if out, err := runProvision(t, "--frobnicate"); err == nil || !strings.Contains(out, "unknown argument") {
		t.Errorf("bad argument accepted: %v\n%s", err, out)
	}
	cmd := exec.Command("bash", "../scripts/provision.sh", "--check")
	cmd.Env = append(os.Environ(), "PROVISION_REPO="+t.TempDir())
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "not the Tripline repository") {
		t.Errorf("a directory that is not the repository was accepted: %v\n%s", err, out)
	}
}

// TestVagrantfile checks the VM definition textually (Vagrant is not
// installed in CI) and that the script, the Vagrantfile and the docs agree.
func TestVagrantfile(t *testing.T) {
	data, err := os.ReadFile("../Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	vf := string(data)
	for _, re := range []string{
		`config\.vm\.box = "debian/bookworm64"`,
		`\.cpus = 2\b`,
		`\.memory = 4096\b`,
		`synced_folder "rules", "/home/vagrant/tripline/rules"`,
		`synced_folder "\.", "/vagrant"`,
		`provision "shell", path: "scripts/provision\.sh"`,
		`"PROVISION_REPO" => "/vagrant"`,
		`"PROVISION_RULES" => "/home/vagrant/tripline/rules"`,
	} {
		if !regexp.MustCompile(re).MatchString(vf) {
			t.Errorf("Vagrantfile does not match %s", re)
		}
	}
	// The script prints the command for the VM's paths...
	script, err := os.ReadFile("../scripts/provision.sh")
	if err != nil {
		t.Fatal(err)
	}
	printed := strings.NewReplacer("$repo", "/vagrant", "$rules", "/home/vagrant/tripline/rules").Replace(
		regexp.MustCompile(`sudo \$repo/bin/sensor rules test --live \$rules/tests`).FindString(string(script)))
	if printed != liveTestCommand {
		t.Errorf("provision.sh prints %q, want %q", printed, liveTestCommand)
	}
	// ...which the rule-authoring guide documents.
	doc, err := os.ReadFile("../docs/rule-authoring.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), liveTestCommand) {
		t.Errorf("docs/rule-authoring.md does not give the live test command %q", liveTestCommand)
	}
}
