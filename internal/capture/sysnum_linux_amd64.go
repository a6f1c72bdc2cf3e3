package capture

import (
	"os"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/tripline/tripline/internal/event"
)

// syscallTypes maps x86_64 syscall numbers to the event types they produce.
var syscallTypes = []sysnum{
	{2, event.TypeOpen},
	{32, event.TypeDup},
	{33, event.TypeDup2},
	{41, event.TypeSocket},
	{42, event.TypeConnect},
	{43, event.TypeAccept},
	{44, event.TypeSendto},
	{46, event.TypeSendmsg},
	{49, event.TypeBind},
	{50, event.TypeListen},
	{56, event.TypeClone},
	{57, event.TypeFork},
	{58, event.TypeVfork},
	{59, event.TypeExecve},
	{72, event.TypeFcntl},
	{82, event.TypeRename},
	{83, event.TypeMkdir},
	{84, event.TypeRmdir},
	{85, event.TypeCreat},
	{86, event.TypeLink},
	{87, event.TypeUnlink},
	{88, event.TypeSymlink},
	{90, event.TypeChmod},
	{91, event.TypeFchmod},
	{101, event.TypePtrace},
	{105, event.TypeSetuid},
	{106, event.TypeSetgid},
	{117, event.TypeSetresuid},
	{119, event.TypeSetresgid},
	{165, event.TypeMount},
	{166, event.TypeUmount2},
	{175, event.TypeInitModule},
	{257, event.TypeOpenat},
	{258, event.TypeMkdirat},
	{263, event.TypeUnlinkat},
	{264, event.TypeRenameat},
	{265, event.TypeLinkat},
	{266, event.TypeSymlinkat},
	{268, event.TypeFchmodat},
	{272, event.TypeUnshare},
	{288, event.TypeAccept4},
	{292, event.TypeDup3},
	{308, event.TypeSetns},
	{313, event.TypeFinitModule},
	{316, event.TypeRenameat2},
	{319, event.TypeMemfdCreate},
	{321, event.TypeBpf},
	{322, event.TypeExecveat},
	{435, event.TypeClone3},
	{437, event.TypeOpenat2},
	{452, event.TypeFchmodat2},
}

// compatSyscallTypes maps ia32 syscall numbers (which a 64-bit process can
// use too, through int $0x80) to the event types they produce. socketcall
// (102), the ia32 multiplexer of the socket calls, is decoded by the BPF
// program itself.
var compatSyscallTypes = []sysnum{
	{2, event.TypeFork},
	{5, event.TypeOpen},
	{8, event.TypeCreat},
	{9, event.TypeLink},
	{10, event.TypeUnlink},
	{11, event.TypeExecve},
	{15, event.TypeChmod},
	{21, event.TypeMount},
	{23, event.TypeSetuid}, // the 16-bit id calls: the same ids below 65535
	{26, event.TypePtrace},
	{38, event.TypeRename},
	{39, event.TypeMkdir},
	{40, event.TypeRmdir},
	{41, event.TypeDup},
	{46, event.TypeSetgid},
	{52, event.TypeUmount2},
	{55, event.TypeFcntl},
	{63, event.TypeDup2},
	{83, event.TypeSymlink},
	{94, event.TypeFchmod},
	{120, event.TypeClone},
	{128, event.TypeInitModule},
	{164, event.TypeSetresuid},
	{170, event.TypeSetresgid},
	{190, event.TypeVfork},
	{208, event.TypeSetresuid},
	{210, event.TypeSetresgid},
	{213, event.TypeSetuid},
	{214, event.TypeSetgid},
	{221, event.TypeFcntl}, // fcntl64
	{295, event.TypeOpenat},
	{296, event.TypeMkdirat},
	{301, event.TypeUnlinkat},
	{302, event.TypeRenameat},
	{303, event.TypeLinkat},
	{304, event.TypeSymlinkat},
	{306, event.TypeFchmodat},
	{310, event.TypeUnshare},
	{330, event.TypeDup3},
	{346, event.TypeSetns},
	{350, event.TypeFinitModule},
	{353, event.TypeRenameat2},
	{356, event.TypeMemfdCreate},
	{357, event.TypeBpf},
	{358, event.TypeExecveat},
	{359, event.TypeSocket},
	{361, event.TypeBind},
	{362, event.TypeConnect},
	{363, event.TypeListen},
	{364, event.TypeAccept4},
	{369, event.TypeSendto},
	{370, event.TypeSendmsg},
	{435, event.TypeClone3},
	{437, event.TypeOpenat2},
	{452, event.TypeFchmodat2},
}

// CompatKernel reports whether Config.Compat can take effect: the kernel
// may run ia32 syscalls (it was built with their entry, named in its BTF,
// and they were not turned off at boot with ia32_emulation=false). When
// the BTF cannot tell: true. Some guests (PVM, confidential computing)
// refuse them at run time, which userspace cannot read.
func CompatKernel() bool {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return true
	}
	entry := false
	for _, name := range []string{"ia32_sys_call", "do_int80_emulation", "do_int80_syscall_32"} {
		var fn *btf.Func
		if spec.TypeByName(name, &fn) == nil {
			entry = true
			break
		}
	}
	if !entry {
		return false
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "ia32_emulation="); ok {
			switch strings.ToLower(v) {
			case "0", "n", "no", "off", "false":
				return false
			}
		}
	}
	return true
}
