//go:build linux && (amd64 || arm64)

package capture

import (
	"fmt"
	"os"
	"regexp"
	"testing"
	"unsafe"

	"github.com/tripline/tripline/internal/event"
)

// TestLayout checks the decoder's offsets against the bpf2go mirror of
// struct tl_event, so a change to bpf/tripline.h cannot silently skew them.
func TestLayout(t *testing.T) {
	// The filter limits the Go side documents are the kernel keys' sizes.
	var kp triplineTlKfPrefix
	var kn triplineTlKfName
	if len(kp.Data) != FilterPrefixMax || len(kn.Name) != FilterNameMax+1 {
		t.Errorf("kernel filter keys hold %d prefix and %d name bytes; FilterPrefixMax %d, FilterNameMax %d",
			len(kp.Data), len(kn.Name), FilterPrefixMax, FilterNameMax)
	}
	var kf triplineTlKfilter
	if len(kf.FailErrno) != FilterErrnoMax {
		t.Errorf("kernel filter holds %d errnos; FilterErrnoMax %d", len(kf.FailErrno), FilterErrnoMax)
	}
	var e triplineTlEvent
	var ic triplineTlIdentCache
	cases := []struct {
		name      string
		got, want uintptr
	}{
		{"ts", unsafe.Offsetof(e.Ts), offTs},
		{"res", unsafe.Offsetof(e.Res), offRes},
		{"type", unsafe.Offsetof(e.Type), offType},
		{"abi", unsafe.Offsetof(e.Abi), offAbi},
		{"data_len", unsafe.Offsetof(e.DataLen), offDataLen},
		{"flags", unsafe.Offsetof(e.Flags), offFlags},
		{"cpu", unsafe.Offsetof(e.Cpu), offCPU},
		{"tid", unsafe.Offsetof(e.Tid), offTid},
		{"gen", unsafe.Offsetof(e.Gen), offGen},
		{"epoch", unsafe.Offsetof(e.Epoch), offEpoch},
		{"pid", unsafe.Offsetof(e.Pid), offPid},
		{"ppid", unsafe.Offsetof(e.Ppid), offPpid},
		{"vpid", unsafe.Offsetof(e.Vpid), offVpid},
		{"vtid", unsafe.Offsetof(e.Vtid), offVtid},
		{"sid", unsafe.Offsetof(e.Sid), offSid},
		{"uid", unsafe.Offsetof(e.Uid), offUID},
		{"gid", unsafe.Offsetof(e.Gid), offGID},
		{"euid", unsafe.Offsetof(e.Euid), offEUID},
		{"egid", unsafe.Offsetof(e.Egid), offEGID},
		{"loginuid", unsafe.Offsetof(e.Loginuid), offLoginUID},
		{"tty", unsafe.Offsetof(e.Tty), offTTY},
		{"cap_eff", unsafe.Offsetof(e.CapEff), offCapEff},
		{"cap_perm", unsafe.Offsetof(e.CapPerm), offCapPerm},
		{"cap_inh", unsafe.Offsetof(e.CapInh), offCapInh},
		{"pidns", unsafe.Offsetof(e.Pidns), offPidNS},
		{"mntns", unsafe.Offsetof(e.Mntns), offMntNS},
		{"cgroup_id", unsafe.Offsetof(e.CgroupId), offCgroupID},
		{"start_time", unsafe.Offsetof(e.StartTime), offStartTime},
		{"comm", unsafe.Offsetof(e.Comm), offComm},
		{"dirfd", unsafe.Offsetof(e.Dirfd), offDirfd},
		{"oflags", unsafe.Offsetof(e.Oflags), offOflags},
		{"mode", unsafe.Offsetof(e.Mode), offMode},
		{"dev", unsafe.Offsetof(e.Dev), offDev},
		{"ino", unsafe.Offsetof(e.Ino), offIno},
		{"resolve", unsafe.Offsetof(e.Resolve), offResolve},
		{"sock_fd", unsafe.Offsetof(e.SockFd), offSockFd},
		{"family", unsafe.Offsetof(e.Family), offFamily},
		{"sock_type", unsafe.Offsetof(e.SockType), offSockType},
		{"proto", unsafe.Offsetof(e.Proto), offProto},
		{"lport", unsafe.Offsetof(e.Lport), offLport},
		{"rport", unsafe.Offsetof(e.Rport), offRport},
		{"laddr", unsafe.Offsetof(e.Laddr), offLaddr},
		{"raddr", unsafe.Offsetof(e.Raddr), offRaddr},
		{"child_pid", unsafe.Offsetof(e.ChildPid), offChildPid},
		{"child_tid", unsafe.Offsetof(e.ChildTid), offChildTid},
		{"clone_flags", unsafe.Offsetof(e.CloneFlags), offCloneFl},
		{"exit_code", unsafe.Offsetof(e.ExitCode), offExitCode},
		{"args", unsafe.Offsetof(e.Args), offArgs},
		{"str", unsafe.Offsetof(e.Str), offStr},
		// The wire sections (TL_WIRE_HDR, TL_IDENT_SIZE, TL_SEC_*): the
		// header ends where the identity starts, the identity where the
		// first type section (fork) starts, and the sections follow
		// each other up to the data.
		{"wire header", unsafe.Offsetof(e.Pid), wireHdr},
		{"identity", unsafe.Offsetof(e.ChildPid) - unsafe.Offsetof(e.Pid), identSize},
		{"identity cache", unsafe.Sizeof(ic.Ident), identSize},
		{"data", unsafe.Offsetof(e.Data), hdrSize},
		{"sizeof data", unsafe.Sizeof(e.Data), dataSize},
		{"len str", uintptr(len(e.Str)), numStr},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: C offset %d, decoder uses %d", c.name, c.got, c.want)
		}
	}
	// Each type's section is a field range of the struct, in the order of
	// the wire sections.
	sections := map[event.Class][2]uintptr{
		event.ClassExec:    {0, 0},
		event.ClassOpen:    {unsafe.Offsetof(e.Dirfd), unsafe.Offsetof(e.SockFd)},
		event.ClassConnect: {unsafe.Offsetof(e.SockFd), unsafe.Offsetof(e.Args)},
		event.ClassFork:    {unsafe.Offsetof(e.ChildPid), unsafe.Offsetof(e.Dirfd)},
		event.ClassExit:    {unsafe.Offsetof(e.ChildPid), unsafe.Offsetof(e.Dirfd)},
		event.ClassFile:    {unsafe.Offsetof(e.Dirfd), unsafe.Offsetof(e.Data)},
	}
	for cl, want := range sections {
		off, n := wireSection(cl.Types()[0])
		if uintptr(off) != want[0] || uintptr(off+n) != want[1] {
			t.Errorf("%s section [%d,%d), C fields [%d,%d)", cl, off, off+n, want[0], want[1])
		}
	}
	// Every kernel type has a bit in config.type_mask and a per-type counter.
	var st triplineTlStats
	if n := int(event.TypeContainer); n > len(st.SeenType) || n > 64 {
		t.Errorf("%d kernel event types: more than the %d per-type counters or 64 type_mask bits", n, len(st.SeenType))
	}
}

// TestABIVersion: the decoder accepts only records of the ABI the kernel
// side writes; a header bump without the Go one would make every record
// malformed.
func TestABIVersion(t *testing.T) {
	h, err := os.ReadFile("../../bpf/tripline.h")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#define TL_ABI_VERSION (\d+)$`).FindSubmatch(h)
	if m == nil {
		t.Fatal("TL_ABI_VERSION not found in bpf/tripline.h")
	}
	if want := fmt.Sprint(abiVersion); string(m[1]) != want {
		t.Errorf("bpf/tripline.h has TL_ABI_VERSION %s, the decoder expects %s", m[1], want)
	}
}
