package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
)

// Bounds on what a /proc scan keeps, matching what the capture keeps.
const (
	maxCmdline = 4096
	maxArgs    = 256
	maxFile    = 64 << 10
)

var errMalformed = errors.New("proc: malformed procfs file")

// Seed adds every process found in procfs to the table. Processes that
// already have an entry (from events) keep it. Processes that vanish during
// the scan are counted in Stats.ProcErrs.
func (t *Table) Seed() error {
	d, err := os.Open(t.cfg.ProcFS)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProcFS, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProcFS, err)
	}
	now := time.Now().UnixNano()
	for _, n := range names {
		pid, err := strconv.ParseUint(n, 10, 32)
		if err != nil || pid == 0 {
			continue
		}
		s, err := readProcess(t.cfg.ProcFS, t.cgv2, uint32(pid))
		if err != nil {
			t.procErrs.Add(1)
			continue
		}
		if t.cfg.ContainerID != nil {
			s.ContainerID = t.cfg.ContainerID(s.CgroupPath)
		}
		t.wmu.Lock()
		if t.m[s.PID] == nil {
			t.insert(s.PID, s, now)
			t.seeded.Add(1)
		}
		t.wmu.Unlock()
	}
	return nil
}

// ReadProcess reads process pid from procfs ("" means /proc) into a new
// snapshot, the way Seed does: identity, credentials, capabilities,
// namespaces, argv, exe, cwd, tty, loginuid, start time and the cgroup path
// as the capture reports it (the v2 path when not "/", else the v1 memory
// controller's).
func ReadProcess(procfs string, pid uint32) (*event.Process, error) {
	if procfs == "" {
		procfs = DefaultProcFS
	}
	return readProcess(procfs, cgroup2Mount(procfs), pid)
}

func readProcess(procfs, cgv2 string, pid uint32) (*event.Process, error) {
	dir := filepath.Join(procfs, strconv.FormatUint(uint64(pid), 10))
	b, err := readFile(filepath.Join(dir, "stat"), maxFile)
	if err != nil {
		return nil, err
	}
	st, err := parseStat(b)
	if err != nil {
		return nil, fmt.Errorf("%s/stat: %w", dir, err)
	}
	b, err = readFile(filepath.Join(dir, "status"), maxFile)
	if err != nil {
		return nil, err
	}
	s := &event.Process{
		PID: pid, TID: pid, PPID: st.ppid, SID: st.session, TTY: st.tty,
		Comm: st.comm, LoginUID: 0xffffffff,
		StartTime: bootWall() + int64(st.startTicks)*int64(time.Second/ticksPerSecond),
	}
	if err := parseStatus(b, s); err != nil {
		return nil, fmt.Errorf("%s/status: %w", dir, err)
	}
	if b, err := readFile(filepath.Join(dir, "cmdline"), maxCmdline); err == nil {
		s.Argv = splitCmdline(b)
	}
	// The environment the image started with, as exec captures it.
	if b, err := readFile(filepath.Join(dir, "environ"), maxCmdline); err == nil {
		s.Env = splitCmdline(b)
	}
	if l, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		s.ExePath = l
	}
	if l, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil {
		s.Cwd = l
	}
	if b, err := readFile(filepath.Join(dir, "loginuid"), 64); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			s.LoginUID = uint32(v)
		}
	}
	s.PidNS = nsInode(filepath.Join(dir, "ns", "pid"))
	s.MntNS = nsInode(filepath.Join(dir, "ns", "mnt"))
	if b, err := readFile(filepath.Join(dir, "cgroup"), maxFile); err == nil {
		s.CgroupPath, _ = CaptureCgroupPath(b)
		if cgv2 != "" {
			var v2 string
			for _, l := range strings.Split(string(b), "\n") {
				if p, ok := strings.CutPrefix(l, "0::"); ok {
					v2 = p
				}
			}
			if v2 != "" {
				var stt unix.Stat_t
				if unix.Stat(filepath.Join(cgv2, v2), &stt) == nil {
					s.CgroupID = stt.Ino
				}
			}
		}
	}
	return s, nil
}

// readCgroup returns the capture-style cgroup path of pid.
func readCgroup(procfs string, pid uint32) (string, error) {
	b, err := readFile(filepath.Join(procfs, strconv.FormatUint(uint64(pid), 10), "cgroup"), maxFile)
	if err != nil {
		return "", err
	}
	p, ok := CaptureCgroupPath(b)
	if !ok {
		return "", errMalformed
	}
	return p, nil
}

// CaptureCgroupPath picks from the text of /proc/<pid>/cgroup the path the
// capture reports: the cgroup v2 path when it is not "/", else the v1 memory
// controller's path, else "/".
func CaptureCgroupPath(b []byte) (string, bool) {
	var v2, mem string
	found := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		// hierarchy-id:controllers:path (the path may contain ':')
		i := bytes.IndexByte(line, ':')
		if i < 0 {
			continue
		}
		j := bytes.IndexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		hid, ctrls, path := line[:i], line[i+1:i+1+j], line[i+2+j:]
		found = true
		if string(hid) == "0" && len(ctrls) == 0 {
			v2 = string(path)
			continue
		}
		for _, c := range bytes.Split(ctrls, []byte{','}) {
			if string(c) == "memory" {
				mem = string(path)
			}
		}
	}
	switch {
	case v2 != "" && v2 != "/":
		return v2, true
	case mem != "":
		return mem, true
	case v2 != "":
		return v2, true
	}
	return "", found
}

type statFields struct {
	comm               string
	ppid, session, tty uint32
	startTicks         uint64
}

// parseStat parses /proc/<pid>/stat. comm sits in parentheses and may hold
// any byte, ')' included, so fields are counted after the last ')'.
func parseStat(b []byte) (statFields, error) {
	var f statFields
	open := bytes.IndexByte(b, '(')
	close := bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return f, errMalformed
	}
	f.comm = string(b[open+1 : close])
	if len(f.comm) > 64 {
		return f, errMalformed
	}
	fields := bytes.Fields(b[close+1:])
	// state(0) ppid(1) pgrp(2) session(3) tty_nr(4) ... starttime(19)
	if len(fields) < 20 {
		return f, errMalformed
	}
	u32 := func(i int) (uint32, error) {
		v, err := strconv.ParseInt(string(fields[i]), 10, 64)
		if err != nil || v < 0 || v > 1<<32-1 {
			return 0, errMalformed
		}
		return uint32(v), nil
	}
	var err error
	if f.ppid, err = u32(1); err != nil {
		return f, err
	}
	if f.session, err = u32(3); err != nil {
		return f, err
	}
	if f.tty, err = u32(4); err != nil {
		return f, err
	}
	if f.startTicks, err = strconv.ParseUint(string(fields[19]), 10, 64); err != nil || f.startTicks > 1<<50 {
		return f, errMalformed
	}
	return f, nil
}

// parseStatus fills credentials, capabilities and the namespaced pid from
// /proc/<pid>/status.
func parseStatus(b []byte, s *event.Process) error {
	sc := bufio.NewScanner(bytes.NewReader(b))
	seen := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			if len(f) < 2 {
				return errMalformed
			}
			r, err1 := strconv.ParseUint(f[0], 10, 32)
			e, err2 := strconv.ParseUint(f[1], 10, 32)
			if err1 != nil || err2 != nil {
				return errMalformed
			}
			if k == "Uid" {
				s.UID, s.EUID = uint32(r), uint32(e)
			} else {
				s.GID, s.EGID = uint32(r), uint32(e)
			}
			seen++
		case "CapInh", "CapPrm", "CapEff":
			if len(f) != 1 {
				return errMalformed
			}
			c, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				return errMalformed
			}
			switch k {
			case "CapInh":
				s.CapInheritable = c
			case "CapPrm":
				s.CapPermitted = c
			default:
				s.CapEffective = c
			}
		case "NSpid":
			if len(f) > 0 {
				if v, err := strconv.ParseUint(f[len(f)-1], 10, 32); err == nil {
					s.VPID, s.VTID = uint32(v), uint32(v)
				}
			}
		}
	}
	if seen < 2 {
		return errMalformed
	}
	return nil
}

// splitCmdline splits NUL-separated argv, keeping at most maxArgs.
func splitCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	if len(parts) > maxArgs {
		parts = parts[:maxArgs]
	}
	argv := make([]string, len(parts))
	for i, p := range parts {
		argv[i] = string(p)
	}
	return argv
}

// nsInode returns the inode of a /proc/<pid>/ns link ("pid:[4026531836]").
func nsInode(path string) uint64 {
	l, err := os.Readlink(path)
	if err != nil {
		return 0
	}
	i := strings.IndexByte(l, '[')
	if i < 0 || !strings.HasSuffix(l, "]") {
		return 0
	}
	v, _ := strconv.ParseUint(l[i+1:len(l)-1], 10, 64)
	return v
}

// cgroup2Mount finds the cgroup v2 mount point from procfs's mount table.
func cgroup2Mount(procfs string) string {
	b, err := readFile(filepath.Join(procfs, "self", "mounts"), 1<<20)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[2] == "cgroup2" {
			return f[1]
		}
	}
	return ""
}

// ticksPerSecond is USER_HZ, 100 on every Linux architecture Go supports.
const ticksPerSecond = 100

// bootWall returns the wall-clock time of boot, in ns.
func bootWall() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Now().UnixNano() - ts.Nano()
}

// readFile reads at most limit bytes of a small (proc) file.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}
