package event

import (
	"fmt"
	"strconv"
	"strings"
)

// ArgKind says how a parameter of a Sys event is read and rendered.
type ArgKind uint8

// Parameter kinds.
const (
	ArgRes   ArgKind = iota // the result: a number or an errno name
	ArgPath                 // first path: absolute when known, else as passed
	ArgRaw                  // first string as passed (symlink target, module parameters, names)
	ArgPath2                // second path
	ArgAux                  // mount file system type
	ArgInt                  // Args[Reg] as a signed 32-bit number (fds, uids, pids)
	ArgUint                 // Args[Reg] as an unsigned number
	ArgDirfd                // Args[Reg] as a dirfd: AT_FDCWD or the number
	ArgOctal                // Args[Reg] as an octal mode
	ArgEnum                 // Args[Reg] as a name of Names (or the number)
	ArgFlags                // Args[Reg] as NAME|NAME bits of Names
	ArgTuple                // the socket: lip:lport->rip:rport, or the unix path
	ArgHex                  // Args[Reg] in hex (addresses)
)

// SysArg is one parameter of a Sys event, named as Falco names it
// (evt.arg.NAME).
type SysArg struct {
	Name  string
	Kind  ArgKind
	Reg   uint8 // argument register for the Arg* kinds that read Args
	Names []flagName
}

var (
	afNames = []flagName{{"AF_UNIX", 1}, {"AF_INET", 2}, {"AF_AX25", 3}, {"AF_IPX", 4}, {"AF_APPLETALK", 5},
		{"AF_NETROM", 6}, {"AF_BRIDGE", 7}, {"AF_ATMPVC", 8}, {"AF_X25", 9}, {"AF_INET6", 10}, {"AF_NETLINK", 16},
		{"AF_PACKET", 17}, {"AF_CAN", 29}, {"AF_BLUETOOTH", 31}, {"AF_ALG", 38}, {"AF_VSOCK", 40}, {"AF_XDP", 44}}
	sockTypeNames = []flagName{{"SOCK_STREAM", 1}, {"SOCK_DGRAM", 2}, {"SOCK_RAW", 3}, {"SOCK_RDM", 4},
		{"SOCK_SEQPACKET", 5}, {"SOCK_DCCP", 6}, {"SOCK_PACKET", 10}}
	ptraceNames = []flagName{{"PTRACE_TRACEME", 0}, {"PTRACE_PEEKTEXT", 1}, {"PTRACE_PEEKDATA", 2},
		{"PTRACE_PEEKUSR", 3}, {"PTRACE_POKETEXT", 4}, {"PTRACE_POKEDATA", 5}, {"PTRACE_POKEUSR", 6},
		{"PTRACE_CONT", 7}, {"PTRACE_KILL", 8}, {"PTRACE_SINGLESTEP", 9}, {"PTRACE_GETREGS", 12},
		{"PTRACE_SETREGS", 13}, {"PTRACE_GETFPREGS", 14}, {"PTRACE_SETFPREGS", 15}, {"PTRACE_ATTACH", 16},
		{"PTRACE_DETACH", 17}, {"PTRACE_SYSCALL", 24}, {"PTRACE_SETOPTIONS", 0x4200},
		{"PTRACE_GETEVENTMSG", 0x4201}, {"PTRACE_GETSIGINFO", 0x4202}, {"PTRACE_SETSIGINFO", 0x4203},
		{"PTRACE_GETREGSET", 0x4204}, {"PTRACE_SETREGSET", 0x4205}, {"PTRACE_SEIZE", 0x4206},
		{"PTRACE_INTERRUPT", 0x4207}, {"PTRACE_LISTEN", 0x4208}}
	bpfCmdNames = []flagName{{"BPF_MAP_CREATE", 0}, {"BPF_MAP_LOOKUP_ELEM", 1}, {"BPF_MAP_UPDATE_ELEM", 2},
		{"BPF_MAP_DELETE_ELEM", 3}, {"BPF_MAP_GET_NEXT_KEY", 4}, {"BPF_PROG_LOAD", 5}, {"BPF_OBJ_PIN", 6},
		{"BPF_OBJ_GET", 7}, {"BPF_PROG_ATTACH", 8}, {"BPF_PROG_DETACH", 9}, {"BPF_PROG_TEST_RUN", 10},
		{"BPF_PROG_GET_NEXT_ID", 11}, {"BPF_MAP_GET_NEXT_ID", 12}, {"BPF_PROG_GET_FD_BY_ID", 13},
		{"BPF_MAP_GET_FD_BY_ID", 14}, {"BPF_OBJ_GET_INFO_BY_FD", 15}, {"BPF_PROG_QUERY", 16},
		{"BPF_RAW_TRACEPOINT_OPEN", 17}, {"BPF_BTF_LOAD", 18}, {"BPF_BTF_GET_FD_BY_ID", 19},
		{"BPF_TASK_FD_QUERY", 20}, {"BPF_LINK_CREATE", 28}}
	fcntlNames = []flagName{{"F_DUPFD", 0}, {"F_DUPFD_CLOEXEC", 1030}}
	modeNames  = []flagName{{"S_IXOTH", 0o1}, {"S_IWOTH", 0o2}, {"S_IROTH", 0o4}, {"S_IXGRP", 0o10},
		{"S_IWGRP", 0o20}, {"S_IRGRP", 0o40}, {"S_IXUSR", 0o100}, {"S_IWUSR", 0o200}, {"S_IRUSR", 0o400},
		{"S_ISVTX", 0o1000}, {"S_ISGID", 0o2000}, {"S_ISUID", 0o4000}}
	mountFlagNames = []flagName{{"RDONLY", 1}, {"NOSUID", 2}, {"NODEV", 4}, {"NOEXEC", 8},
		{"SYNCHRONOUS", 16}, {"REMOUNT", 32}, {"MANDLOCK", 64}, {"DIRSYNC", 128}, {"NOATIME", 1024},
		{"NODIRATIME", 2048}, {"BIND", 4096}, {"MOVE", 8192}, {"REC", 16384}, {"SILENT", 32768},
		{"UNBINDABLE", 1 << 17}, {"PRIVATE", 1 << 18}, {"SLAVE", 1 << 19}, {"SHARED", 1 << 20},
		{"RELATIME", 1 << 21}, {"STRICTATIME", 1 << 24}, {"LAZYTIME", 1 << 25}}
	umountFlagNames = []flagName{{"FORCE", 1}, {"DETACH", 2}, {"EXPIRE", 4}, {"NOFOLLOW", 8}}
)

func reg(name string, k ArgKind, r uint8) SysArg { return SysArg{Name: name, Kind: k, Reg: r} }
func enum(name string, r uint8, t []flagName) SysArg {
	return SysArg{Name: name, Kind: ArgEnum, Reg: r, Names: t}
}
func flags(name string, r uint8, t []flagName) SysArg {
	return SysArg{Name: name, Kind: ArgFlags, Reg: r, Names: t}
}

var (
	aRes   = SysArg{Name: "res", Kind: ArgRes}
	aFdRes = SysArg{Name: "fd", Kind: ArgRes}
)

// sysArgs lists the parameters of each Sys type in Falco's order.
var sysArgs = [NumTypes][]SysArg{
	TypeSymlink:   {aRes, {Name: "target", Kind: ArgRaw}, {Name: "linkpath", Kind: ArgPath2}},
	TypeSymlinkat: {aRes, {Name: "target", Kind: ArgRaw}, reg("linkdirfd", ArgDirfd, 1), {Name: "linkpath", Kind: ArgPath2}},
	TypeLink:      {aRes, {Name: "oldpath", Kind: ArgPath}, {Name: "newpath", Kind: ArgPath2}},
	TypeLinkat: {aRes, reg("olddir", ArgDirfd, 0), {Name: "oldpath", Kind: ArgPath}, reg("newdir", ArgDirfd, 2),
		{Name: "newpath", Kind: ArgPath2}, reg("flags", ArgUint, 4)},
	TypeUnlink:   {aRes, {Name: "path", Kind: ArgPath}},
	TypeUnlinkat: {aRes, reg("dirfd", ArgDirfd, 0), {Name: "name", Kind: ArgPath}, reg("flags", ArgUint, 2)},
	TypeRename:   {aRes, {Name: "oldpath", Kind: ArgPath}, {Name: "newpath", Kind: ArgPath2}},
	TypeRenameat: {aRes, reg("olddirfd", ArgDirfd, 0), {Name: "oldpath", Kind: ArgPath}, reg("newdirfd", ArgDirfd, 2),
		{Name: "newpath", Kind: ArgPath2}},
	TypeRenameat2: {aRes, reg("olddirfd", ArgDirfd, 0), {Name: "oldpath", Kind: ArgPath}, reg("newdirfd", ArgDirfd, 2),
		{Name: "newpath", Kind: ArgPath2}, reg("flags", ArgUint, 4)},
	TypeMkdir:       {aRes, {Name: "path", Kind: ArgPath}, reg("mode", ArgOctal, 1)},
	TypeMkdirat:     {aRes, reg("dirfd", ArgDirfd, 0), {Name: "path", Kind: ArgPath}, reg("mode", ArgOctal, 2)},
	TypeRmdir:       {aRes, {Name: "path", Kind: ArgPath}},
	TypeChmod:       {aRes, {Name: "filename", Kind: ArgPath}, flags("mode", 1, modeNames)},
	TypeFchmod:      {aRes, reg("fd", ArgInt, 0), flags("mode", 1, modeNames)},
	TypeFchmodat:    {aRes, reg("dirfd", ArgDirfd, 0), {Name: "filename", Kind: ArgPath}, flags("mode", 2, modeNames)},
	TypeSocket:      {aFdRes, enum("domain", 0, afNames), enum("type", 1, sockTypeNames), reg("proto", ArgUint, 2)},
	TypeBind:        {aRes, reg("fd", ArgInt, 0), {Name: "addr", Kind: ArgTuple}},
	TypeListen:      {aRes, reg("fd", ArgInt, 0), reg("backlog", ArgInt, 1)},
	TypeAccept:      {aFdRes, {Name: "tuple", Kind: ArgTuple}},
	TypeAccept4:     {aFdRes, {Name: "tuple", Kind: ArgTuple}, reg("flags", ArgUint, 3)},
	TypeSendto:      {aRes, reg("fd", ArgInt, 0), reg("size", ArgUint, 2), {Name: "tuple", Kind: ArgTuple}},
	TypeSendmsg:     {aRes, reg("fd", ArgInt, 0), {Name: "tuple", Kind: ArgTuple}},
	TypeDup:         {aRes, reg("oldfd", ArgInt, 0)},
	TypeDup2:        {aRes, reg("oldfd", ArgInt, 0), reg("newfd", ArgInt, 1)},
	TypeDup3:        {aRes, reg("oldfd", ArgInt, 0), reg("newfd", ArgInt, 1), reg("flags", ArgUint, 2)},
	TypeFcntl:       {aRes, reg("fd", ArgInt, 0), enum("cmd", 1, fcntlNames)},
	TypePtrace:      {aRes, enum("request", 0, ptraceNames), reg("pid", ArgInt, 1), reg("addr", ArgHex, 2), reg("data", ArgHex, 3)},
	TypeInitModule:  {aRes, reg("length", ArgUint, 1), {Name: "uargs", Kind: ArgRaw}},
	TypeFinitModule: {aRes, reg("fd", ArgInt, 0), {Name: "uargs", Kind: ArgRaw}, reg("flags", ArgUint, 2)},
	TypeSetuid:      {aRes, reg("uid", ArgInt, 0)},
	TypeSetgid:      {aRes, reg("gid", ArgInt, 0)},
	TypeSetresuid:   {aRes, reg("ruid", ArgInt, 0), reg("euid", ArgInt, 1), reg("suid", ArgInt, 2)},
	TypeSetresgid:   {aRes, reg("rgid", ArgInt, 0), reg("egid", ArgInt, 1), reg("sgid", ArgInt, 2)},
	TypeMount: {aRes, {Name: "dev", Kind: ArgRaw}, {Name: "dir", Kind: ArgPath2}, {Name: "type", Kind: ArgAux},
		flags("flags", 3, mountFlagNames)},
	TypeUmount2:     {aRes, {Name: "name", Kind: ArgPath}, flags("flags", 1, umountFlagNames)},
	TypeMemfdCreate: {aFdRes, {Name: "name", Kind: ArgRaw}, reg("flags", ArgUint, 1)},
	TypeBpf:         {{Name: "res_or_fd", Kind: ArgRes}, enum("cmd", 0, bpfCmdNames)},
	TypeUnshare:     {aRes, flags("flags", 0, cloneFlagNames)},
	TypeSetns:       {aRes, reg("fd", ArgInt, 0), flags("nstype", 1, cloneFlagNames)},
	TypeFchmodat2: {aRes, reg("dirfd", ArgDirfd, 0), {Name: "filename", Kind: ArgPath}, flags("mode", 2, modeNames),
		reg("flags", ArgUint, 3)},
}

// FlagsContaining returns, for an ArgFlags parameter, the bits one of
// which is set whenever its text (AppendSysArg) contains s: those of the
// names that contain s. ok is false when the text can contain s otherwise
// (in the hexadecimal rest of unnamed bits, in the "0" of none, across a
// '|') or a is not ArgFlags.
func (a SysArg) FlagsContaining(s string) (mask uint64, ok bool) {
	if a.Kind != ArgFlags || s == "" || strings.ContainsRune(s, '|') || strings.Trim(s, "0123456789abcdefx") == "" {
		return 0, false
	}
	for _, f := range a.Names {
		if strings.Contains(f.name, s) {
			mask |= f.bit
		}
	}
	return mask, true
}

// SysArgs returns the parameters of a Sys event type in Falco's order (nil
// for the other types).
func SysArgs(t Type) []SysArg {
	if t < NumTypes {
		return sysArgs[t]
	}
	return nil
}

// PathArgs tells which fs.path.* fields events of type t have: pair, a
// source and a target (rename, link, symlink, mount); name, one path
// (unlink, mkdir, chmod, umount2, ...); neither for the others. The rules'
// fields and the JSON output both follow it, so a trace shows what a rule
// reads.
func PathArgs(t Type) (name, pair bool) {
	for _, a := range SysArgs(t) {
		switch a.Kind {
		case ArgPath:
			name = true
		case ArgPath2:
			pair = true
		}
	}
	return name && !pair, pair
}

// Source is fs.path.source: the source made absolute, else as passed (the
// symlink target as stored, the mount source).
func (s *Sys) Source() string {
	if s.Path != "" {
		return s.Path
	}
	return s.RawPath
}

// LookupSysArg finds parameter name of type t.
func LookupSysArg(t Type, name string) (SysArg, bool) {
	for _, a := range SysArgs(t) {
		if a.Name == name {
			return a, true
		}
	}
	return SysArg{}, false
}

// SysRaw returns the parameter as a number (evt.rawarg.NAME); false for
// strings.
func SysRaw(ev *Event, a SysArg) (int64, bool) {
	switch a.Kind {
	case ArgRes:
		return ev.Res, true
	case ArgInt, ArgDirfd:
		return int64(int32(ev.Sys.Args[a.Reg%6])), true
	case ArgUint, ArgOctal, ArgEnum, ArgFlags, ArgHex:
		return int64(ev.Sys.Args[a.Reg%6]), true
	}
	return 0, false
}

// AppendSysArg renders the parameter as Falco's evt.arg.NAME text.
func AppendSysArg(dst []byte, ev *Event, a SysArg) []byte {
	s := &ev.Sys
	v := s.Args[a.Reg%6]
	switch a.Kind {
	case ArgRes:
		if ev.Res < 0 {
			return append(dst, ErrnoName(ev.Res)...)
		}
		// A success prints the number (an fd), not SUCCESS.
		return strconv.AppendInt(dst, ev.Res, 10)
	case ArgPath:
		if s.Path != "" {
			return append(dst, s.Path...)
		}
		return append(dst, s.RawPath...)
	case ArgRaw:
		return append(dst, s.RawPath...)
	case ArgPath2:
		if s.Path2 != "" {
			return append(dst, s.Path2...)
		}
		return append(dst, s.RawPath2...)
	case ArgAux:
		return append(dst, s.Aux...)
	case ArgInt:
		return strconv.AppendInt(dst, int64(int32(v)), 10)
	case ArgUint:
		return strconv.AppendUint(dst, v, 10)
	case ArgHex:
		dst = append(dst, "0x"...)
		return strconv.AppendUint(dst, v, 16)
	case ArgDirfd:
		if int32(v) == -100 {
			return append(dst, "AT_FDCWD"...)
		}
		return strconv.AppendInt(dst, int64(int32(v)), 10)
	case ArgOctal:
		dst = append(dst, '0')
		return strconv.AppendUint(dst, v, 8)
	case ArgEnum:
		for _, f := range a.Names {
			if f.bit == v {
				return append(dst, f.name...)
			}
		}
		return strconv.AppendUint(dst, v, 10)
	case ArgFlags:
		return appendFlagNames(dst, v, a.Names)
	case ArgTuple:
		return AppendSockName(dst, &ev.Connect)
	}
	return dst
}

// appendFlagNames renders the set bits of v as NAME|NAME (unknown bits in
// hex; "0" when none is set).
func appendFlagNames(dst []byte, v uint64, table []flagName) []byte {
	start := len(dst)
	rest := v
	for _, f := range table {
		if f.bit != 0 && v&f.bit == f.bit {
			if len(dst) > start {
				dst = append(dst, '|')
			}
			dst = append(dst, f.name...)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		if len(dst) > start {
			dst = append(dst, '|')
		}
		dst = append(dst, "0x"...)
		dst = strconv.AppendUint(dst, rest, 16)
	}
	if len(dst) == start {
		dst = append(dst, '0')
	}
	return dst
}

// AppendSockName renders a socket as Falco's fd.name: lip:lport->rip:rport
// for IP sockets, the path for unix sockets.
func AppendSockName(dst []byte, c *Connect) []byte {
	switch c.Family {
	case AFInet, AFInet6:
		dst = appendAddrPort(dst, c.LocalAddr, c.LocalPort)
		dst = append(dst, "->"...)
		return appendAddrPort(dst, c.RemoteAddr, c.RemotePort)
	case AFUnix:
		return append(dst, c.UnixPath...)
	}
	return dst
}

// setSysArg parses the text of evt.arg.NAME back into ev (FromFields).
func setSysArg(ev *Event, a SysArg, v any) error {
	s := &ev.Sys
	text, err := asString(v)
	if err != nil {
		return err
	}
	setReg := func(n uint64) { s.Args[a.Reg%6] = n }
	switch a.Kind {
	case ArgRes:
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			ev.Res = n
			return nil
		}
		n, ok := parseRes(text)
		if !ok {
			return fmt.Errorf("bad result %q", text)
		}
		ev.Res = n
	// The text is the resolved path when there is one, else the one
	// passed: only an absolute one can have been resolved. The fs.path.*
	// fields, read after these, say what was.
	case ArgPath:
		s.Path, s.RawPath = absOnly(text), text
	case ArgRaw:
		s.RawPath = text
	case ArgPath2:
		s.Path2, s.RawPath2 = absOnly(text), text
	case ArgAux:
		s.Aux = text
	case ArgTuple:
		// The socket comes from the fd.* fields.
	case ArgDirfd:
		if text == "AT_FDCWD" {
			setReg(uint64(0xffffffffffffff9c))
			return nil
		}
		fallthrough
	case ArgInt:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return fmt.Errorf("bad number %q", text)
		}
		setReg(uint64(n))
	case ArgUint:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return fmt.Errorf("bad number %q", text)
		}
		setReg(n)
	case ArgHex:
		n, err := strconv.ParseUint(strings.TrimPrefix(text, "0x"), 16, 64)
		if err != nil {
			return fmt.Errorf("bad hex number %q", text)
		}
		setReg(n)
	case ArgOctal:
		n, err := strconv.ParseUint(text, 8, 64)
		if err != nil {
			return fmt.Errorf("bad mode %q", text)
		}
		setReg(n)
	case ArgEnum:
		for _, f := range a.Names {
			if f.name == text {
				setReg(f.bit)
				return nil
			}
		}
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return fmt.Errorf("unknown value %q", text)
		}
		setReg(n)
	case ArgFlags:
		n, err := parseFlags(text, a.Names, a.Name)
		if err != nil {
			return err
		}
		setReg(n)
	}
	return nil
}

func absOnly(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return ""
}
