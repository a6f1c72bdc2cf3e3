package config

import (
	"errors"
	"fmt"
	"github.com/tripline/tripline/internal/fields"
	"github.com/tripline/tripline/internal/output"
	"github.com/tripline/tripline/internal/pipeline"
	"github.com/tripline/tripline/internal/rules"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// ErrInvalid wraps every validation and config-file error.
var ErrInvalid = errors.New("config: invalid")

// Config is everything `sensor run` can be told. Defaults are in Default.
type Config struct {
	Rules    []string // rule files or folders, loaded in order
	Enable   []string // rule-name globs or tag:NAME to enable
	Disable  []string // rule-name globs or tag:NAME to disable
	Priority string   // minimum priority of rules loaded
	Outputs  []string // stdout | nats | file:PATH

	RulesMaxBytes int64 // size limit of each rules file

	NATS        output.NATSConn // external broker and its auth; URL empty: embed one
	NATSListen  string          // embedded broker address
	NATSSubject string          // subject template
	NATSStream  string          // JetStream stream name

	DataDir          string        // spool and embedded JetStream store
	SpoolMaxBytes    int64         // spool bound
	ContainerdSocket string        // containerd API socket; "" disables enrichment
	MetricsAddr      string        // Prometheus /metrics and /healthz; "" disables
	Coalesce         time.Duration // identical-alert window; 0 disables
	ArgvMax          int           // argv bytes captured per exec
	EnvMax           int           // environment bytes captured per exec; 0: none
	RedactEnv        []string      // globs of environment names whose values alerts redact
	RingSize         int           // BPF ring buffer bytes; 0: sized per CPU (capture.RingPerCPU)
	ProcMax          int           // process table cap
	Hostname         string        // reported hostname; empty: os.Hostname
	LogLevel         string        // debug | info | warn | error
	KernelFilter     string        // on | off: drop in the kernel the events no rule can match
	KernelFilterHost string        // on | off: drop host processes' events of types only container rules use
	Workers          int           // goroutines evaluating events; 0: the CPUs the sensor may use
	SyscallHook      string        // auto | syscall | raw: how syscall exits are traced
	CompatSyscalls   string        // on | off: trace 32-bit (ia32) syscalls too, with a hook every syscall runs
}

// Default returns the documented defaults.
func Default() Config {
	return Config{
		Rules:            []string{"rules"},
		Priority:         "debug",
		RulesMaxBytes:    rules.DefaultMaxFileBytes,
		Outputs:          []string{"nats"},
		NATSListen:       "127.0.0.1:4222",
		NATSSubject:      "tripline.alerts.<priority>.<rule>",
		NATSStream:       "TRIPLINE_ALERTS",
		DataDir:          "/var/lib/tripline",
		SpoolMaxBytes:    256 << 20,
		ContainerdSocket: "/run/containerd/containerd.sock",
		MetricsAddr:      "127.0.0.1:9376",
		Coalesce:         10 * time.Second,
		ArgvMax:          4096,
		EnvMax:           4096,
		RedactEnv:        slices.Clone(fields.DefaultRedactPatterns),
		ProcMax:          65536,
		LogLevel:         "info",
		KernelFilter:     "on",
		KernelFilterHost: "on",
		SyscallHook:      "auto",
		CompatSyscalls:   "off",
	}
}

// RegisterFlags binds every field of c to a flag of fs; c's current values are
// the defaults shown in --help.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&c.Rules, "rules", c.Rules, "rule file or folder (repeatable; loaded in order)")
	fs.StringSliceVar(&c.Enable, "enable", c.Enable, "enable rules by name glob or tag:NAME (repeatable)")
	fs.StringSliceVar(&c.Disable, "disable", c.Disable, "disable rules by name glob or tag:NAME (repeatable)")
	fs.StringVar(&c.Priority, "priority", c.Priority, "minimum priority of rules loaded (emergency..debug)")
	fs.Int64Var(&c.RulesMaxBytes, "rules-max-bytes", c.RulesMaxBytes, "size limit of each rules file; larger files and anything but regular files are refused")
	fs.StringSliceVar(&c.Outputs, "output", c.Outputs, "alert outputs: stdout, nats, file:PATH (repeatable or comma-separated)")
	c.NATS.RegisterFlags(fs) // empty --nats-url embeds a server on --nats-listen
	fs.StringVar(&c.NATSListen, "nats-listen", c.NATSListen, "address of the embedded NATS server")
	fs.StringVar(&c.NATSSubject, "nats-subject", c.NATSSubject, "subject template; tokens <hostname> <priority> <rule> <source>")
	fs.StringVar(&c.NATSStream, "nats-stream", c.NATSStream, "JetStream stream holding the alerts")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "directory of the alert spool and the embedded JetStream store")
	fs.Int64Var(&c.SpoolMaxBytes, "spool-max-bytes", c.SpoolMaxBytes, "bound of the on-disk alert spool")
	fs.StringVar(&c.ContainerdSocket, "containerd-socket", c.ContainerdSocket, "containerd socket for container metadata; empty disables")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "address of /metrics and /healthz; empty disables")
	fs.DurationVar(&c.Coalesce, "coalesce", c.Coalesce, "window in which identical alerts are coalesced; 0 disables")
	fs.IntVar(&c.ArgvMax, "argv-max", c.ArgvMax, "argv bytes captured per exec (at most 8191; longer argv is flagged truncated)")
	fs.IntVar(&c.EnvMax, "env-max", c.EnvMax, "environment bytes captured per exec (at most 8191; 0 captures none; longer is flagged truncated)")
	fs.StringSliceVar(&c.RedactEnv, "redact-env", c.RedactEnv, "environment variable name globs (case-insensitive) whose values alert output shows as <redacted>; rules still see them")
	fs.IntVar(&c.RingSize, "ring-size", c.RingSize, "BPF ring buffer size in bytes (power of two); 0: 2 MiB per CPU, 4 to 64 MiB")
	fs.IntVar(&c.ProcMax, "proc-max", c.ProcMax, "process table capacity (LRU beyond)")
	fs.StringVar(&c.Hostname, "hostname", c.Hostname, "hostname reported in alerts; empty uses the system's")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.KernelFilter, "kernel-filter", c.KernelFilter, "on: drop in the kernel the opens and connects no rule can match (see 'sensor rules list --kernel'); off: send every event")
	fs.StringVar(&c.KernelFilterHost, "kernel-filter-container", c.KernelFilterHost, "on: with --kernel-filter, drop in the kernel the events of host processes (host mount namespace) of types and connects only container rules match; off: keep them")
	fs.StringVar(&c.SyscallHook, "syscall-hook", c.SyscallHook, "syscall: hook only the exits of the syscalls the rules need (syscalls/sys_exit_* tracepoints; needs tracefs, mounted if missing); raw: one hook on every syscall's exit (no tracefs, but every syscall of the host pays for it); auto: syscall when tracefs can be reached, else raw")
	fs.StringVar(&c.CompatSyscalls, "compat-syscalls", c.CompatSyscalls, "on: also trace 32-bit (ia32) syscalls, which any process on an x86_64 kernel with ia32 emulation can make (int $0x80) and the per-syscall hook never sees; one more program runs on every syscall of the host. off: leave them unseen (safe where the kernel has no ia32 emulation, or was booted with ia32_emulation=false)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "goroutines that evaluate rules on events, each owning a share of the processes; 0: one per CPU the sensor may use (GOMAXPROCS, which follows the cgroup CPU limit)")
}

// ApplyFile reads a YAML mapping of flag names to values from path and sets
// every flag of fs that the command line did not set. Unknown keys and bad
// values are errors naming file:line.
func ApplyFile(path string, fs *pflag.FlagSet) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: reading config file: %w", ErrInvalid, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: %s:%d:%d: the config file must be a mapping of flag names to values", ErrInvalid, path, root.Line, root.Column)
	}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		f := fs.Lookup(k.Value)
		if f == nil || k.Value == "config" {
			errs = append(errs, fmt.Errorf("%s:%d:%d: unknown setting %q (known: %s)", path, k.Line, k.Column, k.Value, known(fs)))
			continue
		}
		if f.Changed {
			continue // the command line wins
		}
		vals, err := scalars(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %w", path, v.Line, v.Column, k.Value, err))
			continue
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			err = sv.Replace(vals)
		} else if len(vals) != 1 {
			err = errors.New("expects a single value, not a list")
		} else {
			err = f.Value.Set(vals[0])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d:%d: %s: %w", path, v.Line, v.Column, k.Value, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

func scalars(n *yaml.Node) ([]string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return []string{n.Value}, nil
	case yaml.SequenceNode:
		out := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return nil, errors.New("list items must be scalars")
			}
			out = append(out, c.Value)
		}
		return out, nil
	}
	return nil, errors.New("must be a scalar or a list of scalars")
}

func known(fs *pflag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "config" && f.Name != "help" {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// Validate checks values that flags alone cannot.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("no rules: give --rules"))
	}
	if c.RulesMaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("rules-max-bytes %d must be positive", c.RulesMaxBytes))
	}
	if len(c.Outputs) == 0 {
		errs = append(errs, errors.New("no outputs: give --output"))
	}
	for _, o := range c.Outputs {
		switch {
		case o == "stdout", o == "nats":
		case strings.HasPrefix(o, "file:") && len(o) > len("file:"):
		default:
			errs = append(errs, fmt.Errorf("unknown output %q (want stdout, nats or file:PATH)", o))
		}
	}
	if c.RingSize < 0 || c.RingSize&(c.RingSize-1) != 0 {
		errs = append(errs, fmt.Errorf("ring-size %d is not a power of two (or 0: per CPU)", c.RingSize))
	}
	if c.ArgvMax < 1 || c.ArgvMax > 8191 {
		errs = append(errs, fmt.Errorf("argv-max %d must be within 1..8191", c.ArgvMax))
	}
	if c.EnvMax < 0 || c.EnvMax > 8191 {
		errs = append(errs, fmt.Errorf("env-max %d must be within 0..8191", c.EnvMax))
	}
	if _, err := fields.NewRedactor(c.RedactEnv); err != nil {
		errs = append(errs, fmt.Errorf("redact-env: %w", err))
	}
	if c.ProcMax < 1024 {
		errs = append(errs, fmt.Errorf("proc-max %d must be at least 1024", c.ProcMax))
	}
	if c.Coalesce < 0 {
		errs = append(errs, errors.New("coalesce must not be negative"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.Workers < 0 || c.Workers > pipeline.MaxWorkers {
		errs = append(errs, fmt.Errorf("workers %d must be within 0..%d", c.Workers, pipeline.MaxWorkers))
	}
	if c.KernelFilter != "on" && c.KernelFilter != "off" {
		errs = append(errs, fmt.Errorf("kernel-filter %q: want on or off", c.KernelFilter))
	}
	switch c.SyscallHook {
	case "auto", "syscall", "raw":
	default:
		errs = append(errs, fmt.Errorf("syscall-hook %q: want auto, syscall or raw", c.SyscallHook))
	}
	if c.CompatSyscalls != "on" && c.CompatSyscalls != "off" {
		errs = append(errs, fmt.Errorf("compat-syscalls %q: want on or off", c.CompatSyscalls))
	}
	if c.KernelFilterHost != "on" && c.KernelFilterHost != "off" {
		errs = append(errs, fmt.Errorf("kernel-filter-container %q: want on or off", c.KernelFilterHost))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// WorkerCount is the number of event workers: Workers, or when 0 the CPUs
// the process may use (runtime.GOMAXPROCS, which since Go 1.25 follows the
// cgroup CPU quota).
func (c *Config) WorkerCount() int {
	if c.Workers > 0 {
		return c.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// UsesNATS reports whether alerts go to NATS.
func (c *Config) UsesNATS() bool {
	for _, o := range c.Outputs {
		if o == "nats" {
			return true
		}
	}
	return false
}
