package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tripline/tripline/internal/capture"
	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
)

type traceOpts struct {
	json       bool
	types      string
	pid        uint32
	comm       string
	argvMax    int
	envMax     int
	record     string
	containerd string
}

func newTraceCmd() *cobra.Command {
	var o traceOpts
	cmd := &cobra.Command{
		Use:   "trace",
		Short: "print live kernel events (exec, open, connect, fork, exit and the other captured syscalls), one per line",
		Long: `Attaches the capture probes and prints every event, one per line: a readable
text form by default (control characters escaped), or the flat Falco-keyed JSON
with --json. Prints a line containing "ready" on stderr once attached; stops on
SIGINT/SIGTERM. --record FILE also writes the JSON lines to FILE (the format
"sensor replay" reads).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrace(cmd, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print the flat JSON form (Falco field names)")
	f.StringVar(&o.types, "types", "", "comma-separated classes ("+classList()+") or event types (openat,...); default all")
	f.Uint32Var(&o.pid, "pid", 0, "only this process and the processes it forks (0 = all)")
	f.StringVar(&o.comm, "comm", "", "only tasks whose comm is exactly this")
	f.IntVar(&o.argvMax, "argv-max", capture.DefaultArgvMax, "argv bytes captured per exec")
	f.IntVar(&o.envMax, "env-max", capture.DefaultEnvMax, "environment bytes captured per exec (0: none)")
	f.StringVar(&o.record, "record", "", "also write the events as JSON lines to this file (for sensor replay)")
	f.StringVar(&o.containerd, "containerd-socket", config.Default().ContainerdSocket, "containerd socket for container metadata; empty disables")
	return cmd
}

// parseTraceTypes turns "exec,openat" into event types this build captures.
func parseTraceTypes(s string) ([]event.Type, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	capturable := capture.Capturable()
	var out []event.Type
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		var ts []event.Type
		if c, ok := event.ParseClass(name); ok {
			ts = c.Types()
		} else if t, ok := event.ParseType(name); ok {
			ts = []event.Type{t}
		} else {
			return nil, fmt.Errorf("trace: unknown event class or type %q (classes: %s)", name, classList())
		}
		n := 0
		for _, t := range ts {
			if slices.Contains(capturable, t) && !slices.Contains(out, t) {
				out = append(out, t)
				n++
			} else if slices.Contains(capturable, t) {
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("trace: %q cannot be captured on this system", name)
		}
	}
	return out, nil
}

func runTrace(cmd *cobra.Command, o traceOpts) error {
	types, err := parseTraceTypes(o.types)
	if err != nil {
		return err
	}
	if types == nil {
		types = capture.Capturable()
	}
	var rec *bufio.Writer
	if o.record != "" {
		f, err := os.OpenFile(o.record, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("trace: opening record file: %w", err)
		}
		defer f.Close()
		rec = bufio.NewWriterSize(f, 1<<16)
		defer rec.Flush()
	}
	// The same event path as `sensor run` minus the rules, so recorded events
	// carry ancestry and container metadata for `sensor replay`.
	cfg := config.Default()
	cfg.ArgvMax = o.argvMax
	cfg.EnvMax = o.envMax
	cfg.ContainerdSocket = o.containerd
	cfg.Workers = 1 // print is not concurrent, and a trace reads best in capture order
	log := newLogger(cmd, "warn")
	g := newGroup(log)
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<16)
	var buf []byte
	var werr error
	count := 0
	// The kernel also sends the process lifecycle (for ancestry and container
	// identity); only the asked-for types are shown.
	var shown [event.NumTypes]bool
	for _, t := range types {
		shown[t] = true
	}
	print := func(ev *event.Event) {
		if werr != nil || ev.Type >= event.NumTypes || !shown[ev.Type] {
			return
		}
		count++
		if o.json || rec != nil {
			buf = event.AppendJSON(buf[:0], ev)
			buf = append(buf, '\n')
			if rec != nil {
				if _, err := rec.Write(buf); err != nil {
					werr = fmt.Errorf("trace: writing record file: %w", err)
					return
				}
			}
		}
		if !o.json {
			buf = appendTraceText(buf[:0], ev)
		}
		if _, err := out.Write(buf); err != nil {
			werr = err
			return
		}
		// A live view: every line goes out as soon as it is decoded.
		werr = out.Flush()
	}
	eng, err := newEngine(engineConfig{cfg: cfg, types: types, pid: o.pid, comm: o.comm, onEvent: print}, log, g.start)
	if err != nil {
		g.stop()
		return err
	}
	defer eng.close()
	fmt.Fprintln(cmd.ErrOrStderr(), "trace: ready (probes attached)")
	stop := context.AfterFunc(cmd.Context(), eng.stopCapture)
	defer stop()
	err = eng.pipe.Run(context.Background())
	g.stop()
	if ferr := out.Flush(); werr == nil {
		werr = ferr
	}
	s := eng.capt.Stats()
	fmt.Fprintf(cmd.ErrOrStderr(), "trace: %d events printed, %d lost in the kernel (ring full), %d malformed\n", count, s.Lost, s.Malformed)
	if err != nil {
		return err
	}
	if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		return werr
	}
	return nil
}

// appendTraceText renders one event as a readable line. Every string from
// the kernel is quoted with control characters escaped: a process may be
// named "\x1b[2J".
func appendTraceText(b []byte, ev *event.Event) []byte {
	p := &ev.Proc
	b = ev.Time().UTC().AppendFormat(b, "15:04:05.000000")
	b = append(b, ' ')
	b = append(b, ev.Type.String()...)
	b = append(b, " pid="...)
	b = strconv.AppendUint(b, uint64(p.PID), 10)
	if p.TID != p.PID {
		b = append(b, " tid="...)
		b = strconv.AppendUint(b, uint64(p.TID), 10)
	}
	b = append(b, " ppid="...)
	b = strconv.AppendUint(b, uint64(p.PPID), 10)
	b = append(b, " uid="...)
	b = strconv.AppendUint(b, uint64(p.EUID), 10)
	b = append(b, " comm="...)
	b = strconv.AppendQuote(b, p.Comm)
	switch ev.Class() {
	case event.ClassExec:
		b = append(b, " exe="...)
		b = strconv.AppendQuote(b, p.ExePath)
		b = append(b, " argv=["...)
		for i, a := range p.Argv {
			if i > 0 {
				b = append(b, ' ')
			}
			b = strconv.AppendQuote(b, a)
		}
		b = append(b, ']')
		b = append(b, " cwd="...)
		b = strconv.AppendQuote(b, p.Cwd)
		if p.CgroupPath != "" {
			b = append(b, " cgroup="...)
			b = strconv.AppendQuote(b, p.CgroupPath)
		}
		if ev.Failed() {
			b = append(b, " filename="...)
			b = strconv.AppendQuote(b, ev.Open.RawPath)
		}
		if p.ExeFromMemfd {
			b = append(b, " memfd"...)
		}
		if p.ExeUpperLayer {
			b = append(b, " upper-layer"...)
		}
		if p.ExeLowerLayer {
			b = append(b, " lower-layer"...)
		}
		if p.ExeWritable {
			b = append(b, " exe-writable"...)
		}
		if ev.Flags&event.FlagArgvTruncated != 0 {
			b = append(b, " argv-truncated"...)
		}
	case event.ClassOpen:
		b = append(b, " path="...)
		b = strconv.AppendQuote(b, ev.Open.Path)
		if ev.Open.RawPath != ev.Open.Path {
			b = append(b, " raw="...)
			b = strconv.AppendQuote(b, ev.Open.RawPath)
		}
		b = append(b, " flags="...)
		b = append(b, event.OpenFlagsText(ev.Open.Flags)...)
	case event.ClassConnect:
		cn := &ev.Connect
		switch cn.Family {
		case event.AFUnix:
			b = append(b, " unix="...)
			b = strconv.AppendQuote(b, cn.UnixPath)
		case event.AFInet, event.AFInet6:
			switch cn.Proto {
			case event.ProtoTCP:
				b = append(b, " tcp "...)
			case event.ProtoUDP:
				b = append(b, " udp "...)
			default:
				b = append(b, ' ')
			}
			if cn.LocalAddr.IsValid() {
				b = cn.LocalAddr.AppendTo(b)
			}
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(cn.LocalPort), 10)
			b = append(b, "->"...)
			if cn.RemoteAddr.IsValid() {
				b = cn.RemoteAddr.AppendTo(b)
			}
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(cn.RemotePort), 10)
		}
	case event.ClassFile, event.ClassSocket, event.ClassDup, event.ClassPriv, event.ClassMount, event.ClassNS, event.ClassMemfd:
		b = appendSysText(b, ev)
	case event.ClassFork:
		b = append(b, " child="...)
		b = strconv.AppendUint(b, uint64(ev.Fork.ChildPID), 10)
		if ev.Fork.IsThread {
			b = append(b, " thread="...)
			b = strconv.AppendUint(b, uint64(ev.Fork.ChildTID), 10)
		}
	case event.ClassExit:
		b = append(b, " code="...)
		b = strconv.AppendInt(b, int64(ev.Exit.Code), 10)
		if ev.Exit.Signal != 0 {
			b = append(b, " signal="...)
			b = strconv.AppendInt(b, int64(ev.Exit.Signal), 10)
		}
		if ev.Exit.Thread {
			b = append(b, " thread-only"...)
		}
	}
	if ev.Class() != event.ClassFork && ev.Class() != event.ClassExit {
		b = append(b, " res="...)
		if ev.Res < 0 {
			b = append(b, event.ErrnoName(ev.Res)...)
		} else {
			b = strconv.AppendInt(b, ev.Res, 10)
		}
	}
	return append(b, '\n')
}

// classList names the classes `--types` accepts.
func classList() string {
	var names []string
	for c := event.ClassUnknown + 1; c < event.NumClasses; c++ {
		if c != event.ClassContainer {
			names = append(names, c.String())
		}
	}
	return strings.Join(names, ",")
}

// appendSysText renders the parameters of a Sys event (quoted, so control
// characters are escaped) and the socket or file its fd refers to.
func appendSysText(b []byte, ev *event.Event) []byte {
	var tmp [256]byte
	for _, a := range event.SysArgs(ev.Type) {
		if a.Kind == event.ArgRes {
			continue
		}
		b = append(b, ' ')
		b = append(b, a.Name...)
		b = append(b, '=')
		b = strconv.AppendQuote(b, string(event.AppendSysArg(tmp[:0], ev, a)))
	}
	switch ev.Sys.FDKind {
	case event.FDFile:
		b = append(b, " fd.name="...)
		b = strconv.AppendQuote(b, ev.Sys.FDPath)
	case event.FDSocket:
		b = append(b, " fd.name="...)
		b = strconv.AppendQuote(b, string(event.AppendSockName(tmp[:0], &ev.Connect)))
	}
	return b
}
