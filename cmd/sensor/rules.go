package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/capture"
	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/term"
)

// newRulesCmd is the parent of the rules subcommands; others (e.g. test)
// are added with cmd.AddCommand from their own files.
func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Validate and inspect Falco-language rules files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newRulesValidateCmd(), newRulesListCmd())
	return cmd
}

// addRulesMaxBytes adds --rules-max-bytes, the size limit of each rules file,
// with the same default as `sensor run`.
func addRulesMaxBytes(cmd *cobra.Command, p *int64) {
	*p = config.Default().RulesMaxBytes
	cmd.Flags().Var((*positiveBytes)(p), "rules-max-bytes", "size limit of each rules file; larger files and anything but regular files are refused")
}

// positiveBytes is a flag value that refuses sizes below one byte when it is
// parsed, so no command checks it again.
type positiveBytes int64

func (b *positiveBytes) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *positiveBytes) Type() string   { return "int" }
func (b *positiveBytes) Set(s string) error {
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("%d must be positive", n)
	}
	*b = positiveBytes(n)
	return nil
}

// loadRulesFiles loads paths for the offline commands: SIGINT/SIGTERM (the
// command's context) stop it. err is nil when only the report has errors.
func loadRulesFiles(cmd *cobra.Command, paths []string, maxBytes int64) (*rules.Ruleset, *rules.Report, error) {
	rs, rep, err := rules.LoadFilesContext(cmd.Context(), paths, rules.Options{MaxFileBytes: maxBytes})
	if err != nil && (len(rep.Errors) == 0 || cmd.Context().Err() != nil) {
		return nil, nil, err
	}
	return rs, rep, nil
}

func newRulesValidateCmd() *cobra.Command {
	var asJSON bool
	var maxBytes int64
	cmd := &cobra.Command{
		Use:   "validate [--json] PATH...",
		Short: "Load rules files or folders (their *.yaml/*.yml in lexical order) and report every error",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, rep, err := loadRulesFiles(cmd, args, maxBytes)
			if err != nil {
				return err // I/O failure or interrupted
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeValidateJSON(out, rep); err != nil {
					return err
				}
			} else {
				writeValidateText(out, rep, len(args))
			}
			if len(rep.Errors) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	addRulesMaxBytes(cmd, &maxBytes)
	return cmd
}

type validateJSON struct {
	RulesCompiled int          `json:"rules_compiled"`
	RulesSkipped  []rules.Skip `json:"rules_skipped"`
	RulesDisabled int          `json:"rules_disabled"`
	Errors        []rules.Diag `json:"errors"`
	Warnings      []rules.Diag `json:"warnings"`
}

func writeValidateJSON(w io.Writer, rep *rules.Report) error {
	v := validateJSON{
		RulesCompiled: rep.Compiled,
		RulesSkipped:  append([]rules.Skip{}, rep.Skipped...),
		RulesDisabled: rep.Disabled,
		Errors:        append([]rules.Diag{}, rep.Errors...),
		Warnings:      append([]rules.Diag{}, rep.Warnings...),
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeValidateText(w io.Writer, rep *rules.Report, paths int) {
	for _, d := range rep.Errors {
		fmt.Fprintf(w, "error: %s\n", rulesDiagText(d))
	}
	for _, d := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", rulesDiagText(d))
	}
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "skipped: %s: %s\n", rulesTermSafe(s.Rule), rulesTermSafe(s.Reason))
	}
	status := "ok"
	if len(rep.Errors) > 0 {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s: %d rules compiled, %d disabled, %d skipped, %d errors, %d warnings\n",
		status, rep.Compiled, rep.Disabled, len(rep.Skipped), len(rep.Errors), len(rep.Warnings))
}

func newRulesListCmd() *cobra.Command {
	var maxBytes int64
	var kernel bool
	cmd := &cobra.Command{
		Use:   "list [--kernel] PATH...",
		Short: "List each rule with its priority, tags, event types and state, or (--kernel) what the kernel filters",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, rep, err := loadRulesFiles(cmd, args, maxBytes)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if kernel {
				writeHooks(out, captureTypes(engineConfig{rules: rs}))
				writeKernelFilter(out, rs.KernelFilter())
			} else if err := writeRulesTable(out, rs); err != nil {
				return err
			}
			for _, d := range rep.Errors {
				fmt.Fprintf(cmd.ErrOrStderr(), "error: %s\n", rulesDiagText(d))
			}
			if len(rep.Errors) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	addRulesMaxBytes(cmd, &maxBytes)
	cmd.Flags().BoolVar(&kernel, "kernel", false, "print the filter pushed into the kernel per event type instead (sensor run --kernel-filter=off disables it)")
	return cmd
}

func writeRulesTable(out io.Writer, rs *rules.Ruleset) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tPRIORITY\tSTATE\tEVENT TYPES\tTAGS")
	for _, r := range rs.Rules() {
		state := "enabled"
		switch {
		case r.Skipped != "":
			state = "skipped"
		case !r.Enabled:
			state = "disabled"
		}
		types := make([]string, 0, len(r.Types()))
		for _, t := range r.Types() {
			types = append(types, t.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rulesTermSafe(r.Name), r.Priority, state,
			rulesOrDash(strings.Join(types, ",")), rulesOrDash(rulesTermSafe(strings.Join(r.Tags, ","))))
	}
	return tw.Flush()
}

// writeHooks prints where the kernel runs a program for the captured types:
// the exit of each of their syscalls, and the scheduler events.
func writeHooks(out io.Writer, types []event.Type) {
	var sys []event.Type
	for _, t := range types {
		if capture.SyscallHooked(t) {
			sys = append(sys, t)
		}
	}
	fmt.Fprintf(out, "Syscall exits hooked (--syscall-hook=syscall; every other syscall runs no program): %s\n", strings.Join(typeNames(sys), ", "))
	fmt.Fprintln(out, "Scheduler events hooked, whatever the rules: exec, fork, exit (the process table needs them).")
	fmt.Fprintln(out)
}

// writeKernelFilter prints, per open type, the terms an open must pass to
// be sent: one per rule evaluated on the type.
func writeKernelFilter(out io.Writer, kf *rules.KernelFilter) {
	fmt.Fprintln(out, "Kernel filter: an open of a filtered type is sent when it passes one rule's line.")
	fmt.Fprintln(out, "Failed opens are decided on access and errno only (no resolved path). A connect is sent when it passes one rule's line.")
	fmt.Fprintln(out, "A file change (unlink, rename, link, ...) of a filtered type is sent when it passes one rule's line; a path whose last component is empty, . or .. passes.")
	if len(kf.Types) == 0 {
		fmt.Fprintln(out, "\nno open rules: nothing filtered")
	}
	for _, tf := range kf.Types {
		lines := make([][2]string, len(tf.Terms))
		for i, tm := range tf.Terms {
			lines[i] = [2]string{tm.Rule, openTermText(tm)}
		}
		writeTypeFilter(out, tf.Type.String(), tf.PassAll, tf.Reason, "", lines)
	}
	for _, sf := range kf.Sock {
		lines := make([][2]string, len(sf.Terms))
		for i, tm := range sf.Terms {
			lines[i] = [2]string{tm.Rule, sockTermText(tm)}
		}
		writeTypeFilter(out, sf.Type.String(), sf.PassAll, sf.Reason,
			" (ports and addresses are the remote end's, tested on IPv4/IPv6 only)", lines)
	}
	for _, ff := range kf.Files {
		lines := make([][2]string, len(ff.Terms))
		for i, tm := range ff.Terms {
			lines[i] = [2]string{tm.Rule, fileTermText(tm)}
		}
		writeTypeFilter(out, ff.Type.String(), ff.PassAll, ff.Reason, " (file names are the paths' last components as passed; arguments are the syscall's, from 1)", lines)
	}
	fmt.Fprintln(out)
	switch {
	case len(kf.Host.Types) > 0:
		fmt.Fprintf(out, "Only container rules: dropped for processes in the host's mount namespace (--kernel-filter-container=off keeps them): %s\n",
			strings.Join(typeNames(kf.Host.Types), ", "))
	case kf.Host.Reason != "":
		fmt.Fprintf(out, "No type is dropped for host processes: %s\n", rulesTermSafe(kf.Host.Reason))
	default:
		fmt.Fprintln(out, "No type has only container rules: nothing is dropped for host processes.")
	}
	if len(kf.FailDrop) > 0 {
		fmt.Fprintf(out, "Failures no rule can match (every rule on the type wants success), dropped: %s\n",
			strings.Join(typeNames(kf.FailDrop), ", "))
	}
}

// writeTypeFilter prints one type of the kernel filter: why it is not
// filtered, or a line per rule (name, what an event must pass).
func writeTypeFilter(out io.Writer, typ string, passAll bool, reason, note string, lines [][2]string) {
	fmt.Fprintf(out, "\n%s: ", typ)
	if passAll {
		fmt.Fprintf(out, "not filtered (%s)\n", rulesTermSafe(reason))
		return
	}
	fmt.Fprintf(out, "filtered, %d rules%s\n", len(lines), note)
	for _, l := range lines {
		fmt.Fprintf(out, "  %s: %s\n", rulesTermSafe(l[0]), rulesTermSafe(l[1]))
	}
}

// fileTermText says what a file change must pass for one rule.
func fileTermText(tm rules.FileTerm) string {
	if tm.Container {
		return "process in a container (not in the host's mount namespace)"
	}
	if tm.Flags != 0 {
		return fmt.Sprintf("argument %d has a bit of %#o", tm.FlagReg+1, tm.Flags)
	}
	var alt []string
	for s, names := range tm.Names {
		if names != nil {
			alt = append(alt, fmt.Sprintf("path %d named %s", s+1, strings.Join(names, " | ")))
		}
	}
	if len(alt) == 0 {
		return "none (its file name conditions name no file)"
	}
	return strings.Join(alt, ", or ")
}

// openTermText says what an open must pass for one rule.
func openTermText(tm rules.OpenTerm) string {
	var parts []string
	switch tm.Access {
	case rules.AccessRead:
		parts = append(parts, "read")
	case rules.AccessWrite:
		parts = append(parts, "write")
	case rules.AccessRead | rules.AccessWrite:
		parts = append(parts, "read+write")
	}
	if tm.Result != rules.ResultAny {
		res := tm.Result.String()
		if len(tm.Errnos) > 0 { // only failure terms have them
			names := make([]string, len(tm.Errnos))
			for i, e := range tm.Errnos {
				names[i] = event.ErrnoName(-int64(e))
			}
			res += " " + strings.Join(names, "|")
		}
		parts = append(parts, res)
	}
	switch {
	case tm.Result == rules.ResultFailure:
	case tm.AnyPath:
		parts = append(parts, "any path")
	default:
		var alt []string
		if len(tm.Prefixes) > 0 {
			alt = append(alt, "path starts with "+strings.Join(tm.Prefixes, " | "))
		}
		if len(tm.Contains) > 0 {
			alt = append(alt, "path contains "+strings.Join(tm.Contains, " | "))
		}
		if len(tm.Names) > 0 {
			alt = append(alt, "file name in "+strings.Join(tm.Names, " | "))
		}
		parts = append(parts, strings.Join(alt, " or "))
	}
	if len(parts) == 0 {
		return "anything"
	}
	return strings.Join(parts, "; ")
}

// sockTermText says what a connect must pass for one rule.
func sockTermText(tm rules.SockTerm) string {
	var parts []string
	if tm.Families != rules.FamAll {
		parts = append(parts, "family "+tm.Families.String())
	}
	if tm.Results != rules.ResAll {
		parts = append(parts, "result "+tm.Results.String())
	}
	if tm.Container {
		parts = append(parts, "in a container")
	}
	if tm.Ports != nil {
		ps := make([]string, len(tm.Ports))
		for i, p := range tm.Ports {
			ps[i] = p.String()
		}
		parts = append(parts, "port in "+strings.Join(ps, " | "))
	}
	prefixes := func(ps []netip.Prefix) string {
		out := make([]string, len(ps))
		for i, p := range ps {
			out[i] = p.String()
		}
		return strings.Join(out, " | ")
	}
	if tm.Addrs != nil {
		parts = append(parts, "address in "+prefixes(tm.Addrs))
	}
	if len(tm.NotAddrs) > 0 {
		parts = append(parts, "address not in "+prefixes(tm.NotAddrs))
	}
	if len(parts) == 0 {
		return "anything"
	}
	return strings.Join(parts, "; ")
}

func rulesOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// rulesTermSafe escapes control characters (term.Escape) line by line, keeping
// the newlines of multi-line diagnostics (condition + caret).
func rulesTermSafe(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = term.Escape(l)
	}
	return strings.Join(lines, "\n")
}

// rulesDiagText renders a diagnostic for a terminal: escaped, with the
// caret still under the right character of the escaped condition.
func rulesDiagText(d rules.Diag) string {
	snip, caret := d.Snippet, d.Caret
	d.Snippet = ""
	out := rulesTermSafe(d.Error())
	if snip == "" {
		return out
	}
	caret = min(max(caret, 0), len(snip))
	return out + "\n    " + term.Escape(snip) + "\n    " + strings.Repeat(" ", len(term.Escape(snip[:caret]))) + "^"
}
