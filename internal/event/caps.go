package event

import "strconv"

// Linux capability names by bit number, as Falco prints them.
var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
	"CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
	"CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
	"CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapBaseCount is how many capabilities every supported kernel has
// (CAP_CHOWN..CAP_AUDIT_READ); later ones depend on the kernel version.
const CapBaseCount = 38

// CapName returns the name of capability bit i ("CAP_47" when unknown).
func CapName(i int) string {
	if i >= 0 && i < len(capNames) {
		return capNames[i]
	}
	return "CAP_" + strconv.Itoa(i)
}

// CapIndex returns the bit of a capability name ("CAP_SYS_ADMIN" → 21).
func CapIndex(name string) (int, bool) {
	for i, n := range capNames {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// CapNames returns the capability set as Falco prints it: space-separated names.
func CapNames(set uint64) string { return string(AppendCapNames(nil, set)) }

// AppendCapNames appends the set as space-separated names without allocating.
func AppendCapNames(b []byte, set uint64) []byte {
	first := true
	for i := 0; i < 64; i++ {
		if set&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		if i < len(capNames) {
			b = append(b, capNames[i]...)
		} else {
			b = append(b, "CAP_"...)
			b = strconv.AppendInt(b, int64(i), 10)
		}
	}
	return b
}
