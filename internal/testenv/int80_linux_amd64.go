package testenv

// Int80 makes the ia32 syscall nr with arguments a0..a3 (ebx, ecx, edx,
// esi) through int $0x80, as a 64-bit process hiding from tools that only
// watch native syscalls would, and returns eax sign-extended (a negative
// errno on failure). Pointers must be below 4 GiB (unix.MAP_32BIT).
func Int80(nr, a0, a1, a2, a3 uintptr) int64
