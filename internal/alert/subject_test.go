package alert

import (
	"strings"
	"testing"
)

func TestSlugMatchesFalcosidekick(t *testing.T) {
	tests := map[string]string{
		"Terminal shell in container":                                     "terminal_shell_in_container",
		"Detect release_agent File Container Escapes":                     "detect_release_agent_file_container_escapes",
		"Execution from /dev/shm":                                         "execution_from_dev_shm",
		"Redirect STDOUT/STDIN to Network Connection in Container":        "redirect_stdout_stdin_to_network_connection_in_container",
		"Backdoored library loaded into SSHD (CVE-2024-3094)":             "backdoored_library_loaded_into_sshd_cve_2024_3094",
		"Container Drift Detected (open+create)":                          "container_drift_detected_open_create",
		"Polkit Local Privilege Escalation Vulnerability (CVE-2021-4034)": "polkit_local_privilege_escalation_vulnerability_cve_2021_4034",
		"  __weird*.>rule  ":                                              "weird_rule",
		"":                                                                "unknown",
		"***":                                                             "unknown",
		"\x1b[2J":                                                         "2j",
	}
	for in, want := range tests {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSubjectTemplate(t *testing.T) {
	a := &Alert{Rule: "Execution from /dev/shm", Priority: PriorityWarning, Hostname: "node-1.example.com"}
	tests := []struct{ tmpl, want, prefix string }{
		{"", "tripline.alerts.warning.execution_from_dev_shm", "tripline.alerts"},
		{"falco.<priority>.<rule>", "falco.warning.execution_from_dev_shm", "falco"},
		{"t.<hostname>.<source>.<priority>", "t.node_1_example_com.syscall.warning", "t"},
		{"t.host-<hostname>.x", "t.host-node_1_example_com.x", "t"},
		{"<priority>.x", "warning.x", ""},
	}
	for _, tt := range tests {
		s, err := ParseSubject(tt.tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tt.tmpl, err)
		}
		if got := s.For(a); got != tt.want || !ValidSubject(got) {
			t.Errorf("%q: got %q want %q", tt.tmpl, got, tt.want)
		}
		if got := s.Prefix(); got != tt.prefix {
			t.Errorf("%q: prefix %q want %q", tt.tmpl, got, tt.prefix)
		}
	}
	if got := Slug(strings.Repeat("ab ", 100)); len(got) > maxSlug || strings.HasSuffix(got, "_") {
		t.Errorf("long slug %q", got)
	}
	for _, bad := range []string{strings.Repeat("<rule>.", 9) + "x", "a..b", "a.*", "a.>", "a b", "a.<nope>", "a.<rule", ".a", "a.", strings.Repeat("a", 201)} {
		if _, err := ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) = nil error", bad)
		}
	}
}

func FuzzSlug(f *testing.F) {
	for _, s := range []string{"Terminal shell in container", "", "\x1b[2J", "a.b*c>d e", "KELVIN \u212a", "\xff\xfe"} {
		f.Add(s)
	}
	tmpl, _ := ParseSubject("")
	f.Fuzz(func(t *testing.T, s string) {
		slug := Slug(s)
		if slug == "" || len(slug) > maxSlug || strings.HasPrefix(slug, "_") || strings.HasSuffix(slug, "_") || strings.Contains(slug, "__") {
			t.Fatalf("Slug(%q) = %q", s, slug)
		}
		for _, c := range []byte(slug) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
				t.Fatalf("Slug(%q) = %q has %q", s, slug, c)
			}
		}
		subj := tmpl.For(&Alert{Rule: s, Hostname: s, Source: s, Priority: PriorityDebug})
		if !ValidSubject(subj) || strings.Count(subj, ".") != 3 {
			t.Fatalf("subject %q from %q", subj, s)
		}
	})
}
