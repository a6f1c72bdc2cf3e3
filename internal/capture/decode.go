package capture

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"unsafe"

	"github.com/tripline/tripline/internal/event"
)

// Record layout of struct tl_event (bpf/tripline.h). TestLayout checks these
// offsets against the bpf2go-generated mirror of the C struct. On the wire a
// record is the header (up to offPid), the identity (offPid..offChildPid)
// when recIdent is set, the type's section (wireSection), then the data.
const (
	abiVersion = 8

	offTs        = 0
	offRes       = 8
	offType      = 16
	offAbi       = 17
	offDataLen   = 18
	offFlags     = 20
	offCPU       = 24
	offTid       = 28
	offGen       = 32
	offEpoch     = 36
	offStr       = 40
	offPid       = 80
	offPpid      = 84
	offVpid      = 88
	offVtid      = 92
	offSid       = 96
	offUID       = 100
	offGID       = 104
	offEUID      = 108
	offEGID      = 112
	offLoginUID  = 116
	offTTY       = 120
	offCapEff    = 128
	offCapPerm   = 136
	offCapInh    = 144
	offPidNS     = 152
	offMntNS     = 160
	offCgroupID  = 168
	offStartTime = 176
	offComm      = 184
	offChildPid  = 200
	offChildTid  = 204
	offCloneFl   = 208
	offExitCode  = 216
	offDirfd     = 224
	offOflags    = 228
	offMode      = 232
	offDev       = 236
	offIno       = 240
	offResolve   = 248
	offSockFd    = 256
	offFamily    = 260
	offSockType  = 262
	offProto     = 264
	offLport     = 266
	offRport     = 268
	offLaddr     = 272
	offRaddr     = 288
	offArgs      = 304
	hdrSize      = 352

	wireHdr   = offPid               // the header every record starts with
	identSize = offChildPid - offPid // the identity section

	numStr   = 10
	dataSize = 24576
)

// wireSection returns the part of struct tl_event that follows the header
// (and identity) of a record of type typ, as the kernel's wire_section.
func wireSection(typ event.Type) (off, size int) {
	switch typ.Class() {
	case event.ClassExec:
		return 0, 0
	case event.ClassOpen:
		return offDirfd, offSockFd - offDirfd
	case event.ClassConnect:
		return offSockFd, offArgs - offSockFd
	case event.ClassFork, event.ClassExit:
		return offChildPid, offDirfd - offChildPid
	}
	return offDirfd, hdrSize - offDirfd
}

// String slots (enum tl_str_idx).
const (
	strExe = iota
	strCwd
	strArgv
	strCgroup
	strPath
	strRaw
	strEnv
	strPath2
	strRaw2
	strAux
)

// Record flags (TL_F_*). The low three bits equal event.Flag values.
const (
	recArgvTrunc   = 1 << 0
	recPathTrunc   = 1 << 1
	recCgroupTrunc = 1 << 2
	recExeMemfd    = 1 << 8
	recExeUpper    = 1 << 9
	recPathIsBase  = 1 << 10
	recThread      = 1 << 11
	recRawTrunc    = 1 << 12
	recExeWritable = 1 << 13
	recExeLower    = 1 << 14
	recEnvTrunc    = 1 << 15
	recPath2IsBase = 1 << 16
	recFDFile      = 1 << 17
	recFDSock      = 1 << 18
	recIdent       = 1 << 19
)

const atFDCWD = -100

var (
	errMalformed = errors.New("capture: malformed record")
	errNoIdent   = errors.New("capture: record names an identity not cached")
)

// decoder turns raw ring-buffer records into events without allocating:
// strings alias the record (which the reader reuses), the decoder's arena
// or its header copy, all valid until the next decode.
type decoder struct {
	bootOffset int64 // CLOCK_REALTIME - CLOCK_BOOTTIME, ns
	arena      []byte
	argv       []string
	env        []string
	// hdr is the record's fixed part at its struct tl_event offsets: the
	// header, the identity (from the record or the cache) and the type's
	// section; the other sections are zero.
	hdr    [hdrSize]byte
	idents identCache
}

var le = binary.LittleEndian

func u16(b []byte, off int) uint16 { return le.Uint16(b[off:]) }
func u32(b []byte, off int) uint32 { return le.Uint32(b[off:]) }
func u64(b []byte, off int) uint64 { return le.Uint64(b[off:]) }

// str returns b as a string without copying.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// cstr returns b up to its first NUL as a string without copying.
func cstr(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return str(b[:i])
		}
	}
	return str(b)
}

// decode fills ev from rec. It validates every length and offset; on error ev
// is left partially filled and must be ignored. A record without identity
// whose (tid, gen) is not cached is errNoIdent.
func (d *decoder) decode(rec []byte, ev *event.Event) error {
	if len(rec) < wireHdr || rec[offAbi] != abiVersion {
		return errMalformed
	}
	typ := event.Type(rec[offType])
	if typ == event.TypeUnknown || typ >= event.TypeContainer {
		return errMalformed
	}
	flags := u32(rec, offFlags)
	full := flags&recIdent != 0
	secOff, secSize := wireSection(typ)
	fixed := wireHdr + secSize
	if full {
		fixed += identSize
	}
	dataLen := int(u16(rec, offDataLen))
	if dataLen > dataSize || fixed+dataLen > len(rec) {
		return errMalformed
	}
	data := rec[fixed : fixed+dataLen]
	var strs [numStr][]byte
	for i := range numStr {
		o := int(u16(rec, offStr+4*i))
		n := int(u16(rec, offStr+4*i+2))
		if n == 0 {
			continue
		}
		if o+n > len(data) {
			return errMalformed
		}
		strs[i] = data[o : o+n]
	}

	h := d.hdr[:]
	copy(h, rec[:wireHdr])
	tid, gen, epoch := u32(rec, offTid), u32(rec, offGen), u32(rec, offEpoch)
	if full {
		copy(h[offPid:offChildPid], rec[wireHdr:])
	} else if !d.idents.get(tid, gen, epoch, h[offPid:offChildPid]) {
		return errNoIdent
	}
	switch {
	case typ == event.TypeProcexit:
		d.idents.drop(tid) // the task's last record
	case full && gen != 0:
		d.idents.put(tid, gen, epoch, h[offPid:offChildPid])
	}
	clear(h[offChildPid:])
	copy(h[secOff:secOff+secSize], rec[fixed-secSize:fixed])
	rec = h

	d.arena = d.arena[:0]
	*ev = event.Event{}
	ev.Type = typ
	ev.Flags = event.Flag(flags & (recArgvTrunc | recPathTrunc | recCgroupTrunc))
	if flags&recRawTrunc != 0 {
		ev.Flags |= event.FlagPathTruncated
	}
	if flags&recEnvTrunc != 0 {
		ev.Flags |= event.FlagEnvTruncated
	}
	ev.CPU = u32(rec, offCPU)
	ev.Timestamp = int64(u64(rec, offTs)) + d.bootOffset
	ev.Res = int64(u64(rec, offRes))

	p := &ev.Proc
	p.PID = u32(rec, offPid)
	p.TID = u32(rec, offTid)
	p.PPID = u32(rec, offPpid)
	p.VPID = u32(rec, offVpid)
	p.VTID = u32(rec, offVtid)
	p.SID = u32(rec, offSid)
	p.UID = u32(rec, offUID)
	p.GID = u32(rec, offGID)
	p.EUID = u32(rec, offEUID)
	p.EGID = u32(rec, offEGID)
	p.LoginUID = u32(rec, offLoginUID)
	p.TTY = u32(rec, offTTY)
	p.CapEffective = u64(rec, offCapEff)
	p.CapPermitted = u64(rec, offCapPerm)
	p.CapInheritable = u64(rec, offCapInh)
	p.PidNS = u64(rec, offPidNS)
	p.MntNS = u64(rec, offMntNS)
	p.CgroupID = u64(rec, offCgroupID)
	if st := u64(rec, offStartTime); st != 0 {
		p.StartTime = int64(st) + d.bootOffset
	}
	p.Comm = cstr(rec[offComm : offComm+16])
	p.CgroupPath = str(strs[strCgroup])

	switch typ.Class() {
	case event.ClassExec:
		p.ExePath = str(strs[strExe])
		p.Cwd = str(strs[strCwd])
		if d.argv = splitNUL(d.argv[:0], strs[strArgv]); len(d.argv) > 0 {
			p.Argv = d.argv
		}
		if d.env = splitNUL(d.env[:0], strs[strEnv]); len(d.env) > 0 {
			p.Env = d.env
		}
		p.ExeFromMemfd = flags&recExeMemfd != 0
		p.ExeUpperLayer = flags&recExeUpper != 0
		p.ExeLowerLayer = flags&recExeLower != 0
		p.ExeWritable = flags&recExeWritable != 0
		// The filename passed to exec (the attempted one when exec failed).
		ev.Open.RawPath = str(strs[strRaw])
		ev.Open.DirFD = atFDCWD
	case event.ClassOpen:
		o := &ev.Open
		o.DirFD = int32(u32(rec, offDirfd))
		o.Flags = u32(rec, offOflags)
		o.Mode = u32(rec, offMode)
		o.Resolve = u64(rec, offResolve)
		o.Dev = u32(rec, offDev)
		o.Ino = u64(rec, offIno)
		o.RawPath = str(strs[strRaw])
		if ev.Res >= 0 && len(strs[strPath]) > 0 {
			o.Path = str(strs[strPath])
		} else if o.Path = d.absPath(strs[strPath], strs[strRaw], flags&recPathIsBase != 0, true); o.Path == "" {
			o.Path = o.RawPath
		}
	case event.ClassConnect:
		d.decodeSock(rec, strs[strRaw], int32(u32(rec, offSockFd)), ev)
	case event.ClassFork:
		f := &ev.Fork
		f.ChildPID = u32(rec, offChildPid)
		f.ChildTID = u32(rec, offChildTid)
		f.CloneFlags = u64(rec, offCloneFl)
		f.IsThread = flags&recThread != 0
	case event.ClassExit:
		status := int32(u32(rec, offExitCode))
		ev.Exit.Code = (status >> 8) & 0xff
		ev.Exit.Signal = status & 0x7f
		ev.Exit.Thread = flags&recThread != 0
	default:
		d.decodeSys(rec, flags, &strs, ev)
	}
	return nil
}

// decodeSys decodes the generic record of the types after TypeProcexit.
func (d *decoder) decodeSys(rec []byte, flags uint32, strs *[numStr][]byte, ev *event.Event) {
	s := &ev.Sys
	for i := range s.Args {
		s.Args[i] = u64(rec, offArgs+8*i)
	}
	s.RawPath = str(strs[strRaw])
	s.RawPath2 = str(strs[strRaw2])
	s.FD = int32(u32(rec, offSockFd))
	switch {
	case flags&recFDSock != 0:
		s.FDKind = event.FDSocket
		d.decodeSock(rec, strs[strAux], s.FD, ev)
	case flags&recFDFile != 0:
		s.FDKind = event.FDFile
		s.FDPath = str(strs[strPath])
		ev.Open.Dev = u32(rec, offDev)
		ev.Open.Ino = u64(rec, offIno)
	default:
		if ev.Type == event.TypeMount {
			s.Aux = str(strs[strAux])
		} else if ev.Type == event.TypeBind || ev.Type == event.TypeSendto || ev.Type == event.TypeSendmsg || ev.Type == event.TypeSocket {
			// No socket behind the fd (a bad fd, a failed socket()): the
			// caller's address or domain.
			d.decodeSock(rec, strs[strAux], s.FD, ev)
		}
	}
	if flags&recFDFile == 0 {
		s.Path = d.absPath(strs[strPath], strs[strRaw], flags&recPathIsBase != 0, pathArg(ev.Type))
	}
	s.Path2 = d.absPath(strs[strPath2], strs[strRaw2], flags&recPath2IsBase != 0, true)
}

// absPath makes the raw path absolute: joined to its base directory when
// the kernel sent one, cleaned when already absolute ("" when raw is not a
// path).
func (d *decoder) absPath(base, raw []byte, isBase, isPath bool) string {
	switch {
	case len(raw) == 0:
		return ""
	case isBase && len(base) > 0:
		return d.joinClean(base, raw)
	case raw[0] == '/' && isPath:
		return d.joinClean(nil, raw)
	}
	return ""
}

// pathArg tells whether the first raw string of typ is a path (not a
// symlink target, module parameters, a memfd name or a mount source).
func pathArg(typ event.Type) bool {
	switch typ {
	case event.TypeSymlink, event.TypeSymlinkat, event.TypeInitModule, event.TypeFinitModule,
		event.TypeMemfdCreate, event.TypeMount:
		return false
	}
	return true
}

// decodeSock fills ev.Connect from the socket fields of a connect, socket,
// dup or send record on fd; sa is the address: the kernel's for a unix
// socket, else the caller's (connect: the destination, used only when the
// socket holds none, as after a failed connect; bind: the local address
// asked for; sendto/sendmsg: the destination).
func (d *decoder) decodeSock(rec, sa []byte, fd int32, ev *event.Event) {
	c := &ev.Connect
	c.FD = fd
	c.Family = u16(rec, offFamily)
	c.SockType = u16(rec, offSockType)
	if pr := u16(rec, offProto); pr == event.ProtoTCP || pr == event.ProtoUDP {
		c.Proto = uint8(pr)
	}
	if ev.Type == event.TypeSocket && ev.Res < 0 {
		// Failed socket(): the requested domain, type and protocol.
		c.Family = uint16(ev.Sys.Args[0])
		c.SockType = uint16(ev.Sys.Args[1] & 0xf)
	}
	var saFam uint16
	if len(sa) >= 2 {
		saFam = le.Uint16(sa)
	}
	if c.Family == 0 {
		c.Family = saFam
	}
	switch c.Family {
	case event.AFInet, event.AFInet6:
		n, saOff := 4, 4
		if c.Family == event.AFInet6 {
			n, saOff = 16, 8
		}
		c.LocalAddr, _ = netip.AddrFromSlice(rec[offLaddr : offLaddr+n])
		c.LocalPort = u16(rec, offLport)
		c.RemoteAddr, _ = netip.AddrFromSlice(rec[offRaddr : offRaddr+n])
		c.RemotePort = u16(rec, offRport)
		if saFam != c.Family || len(sa) < saOff+n {
			return
		}
		addr, _ := netip.AddrFromSlice(sa[saOff : saOff+n])
		port := binary.BigEndian.Uint16(sa[2:])
		switch ev.Type {
		case event.TypeConnect:
			// The socket's destination is what the kernel connected to.
			if c.RemotePort == 0 {
				c.RemoteAddr, c.RemotePort = addr, port
			}
		case event.TypeBind:
			if c.LocalPort == 0 { // failed bind: the address asked for
				c.LocalAddr, c.LocalPort = addr, port
			}
		case event.TypeSendto, event.TypeSendmsg:
			c.RemoteAddr, c.RemotePort = addr, port
		}
	case event.AFUnix:
		d.unixPath(sa, c)
	}
}

// splitNUL appends the strings of a NUL-separated area (argv, environment)
// to dst, a reused slice.
func splitNUL(dst []string, b []byte) []string {
	if len(b) == 0 {
		return dst
	}
	if b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	start := 0
	for i, c := range b {
		if c == 0 {
			dst = append(dst, str(b[start:i]))
			start = i + 1
		}
	}
	return append(dst, str(b[start:]))
}

// unixPath sets c.UnixPath from the sockaddr_un bytes sa.
func (d *decoder) unixPath(sa []byte, c *event.Connect) {
	if len(sa) <= 2 || le.Uint16(sa) != event.AFUnix {
		return
	}
	path := sa[2:]
	if path[0] == 0 {
		// Abstract socket: '@' then the name, which may hold NULs.
		start := len(d.arena)
		d.arena = append(d.arena, '@')
		d.arena = append(d.arena, path[1:]...)
		c.UnixPath = str(d.arena[start:])
		return
	}
	c.UnixPath = cstr(path)
}

// joinClean returns the lexically cleaned absolute path base + "/" + rel
// (rel alone when base is nil), built in the arena.
func (d *decoder) joinClean(base, rel []byte) string {
	start := len(d.arena)
	d.arena = append(d.arena, '/')
	d.appendClean(start, base)
	d.appendClean(start, rel)
	return str(d.arena[start:])
}

// appendClean appends the components of p to the arena path that begins at
// start (always "/..."), resolving "." and ".." lexically.
func (d *decoder) appendClean(start int, p []byte) {
	for len(p) > 0 {
		i := 0
		for i < len(p) && p[i] != '/' {
			i++
		}
		comp := p[:i]
		if i < len(p) {
			p = p[i+1:]
		} else {
			p = nil
		}
		switch {
		case len(comp) == 0 || (len(comp) == 1 && comp[0] == '.'):
		case len(comp) == 2 && comp[0] == '.' && comp[1] == '.':
			j := len(d.arena) - 1
			for j > start && d.arena[j] != '/' {
				j--
			}
			if j == start {
				d.arena = d.arena[:start+1]
			} else {
				d.arena = d.arena[:j]
			}
		default:
			if len(d.arena) > start+1 {
				d.arena = append(d.arena, '/')
			}
			d.arena = append(d.arena, comp...)
		}
	}
}
