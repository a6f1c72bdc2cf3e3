#include "textflag.h"

// func Int80(nr, a0, a1, a2, a3 uintptr) int64
TEXT ·Int80(SB), NOSPLIT, $0-48
	MOVQ nr+0(FP), AX
	MOVQ a0+8(FP), BX
	MOVQ a1+16(FP), CX
	MOVQ a2+24(FP), DX
	MOVQ a3+32(FP), SI
	INT  $0x80
	MOVLQSX AX, AX
	MOVQ AX, ret+40(FP)
	RET
