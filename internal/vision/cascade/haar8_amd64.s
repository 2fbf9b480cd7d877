#include "textflag.h"

// haarStump's layout (eval.go; TestHaarStumpLayout checks it): r [3]corners
// of {tl, tr, bl, br int32} at 0, 16, 32; w [3]float32 at 48; threshold
// float32 at 60; leaf [2]float64 at 64 and 72; 80 bytes.

// RECT1 leaves in Yd the int32 rectangle sums of the corners at off(DI)
// for the eight windows at SI, SI+4, …: one load per corner.
#define RECT1(off, Yd) \
	MOVLQSX off+0(DI), AX; \
	VMOVDQU (SI)(AX*4), Yd; \
	MOVLQSX off+4(DI), AX; \
	VPSUBD  (SI)(AX*4), Yd, Yd; \
	MOVLQSX off+8(DI), AX; \
	VPSUBD  (SI)(AX*4), Yd, Yd; \
	MOVLQSX off+12(DI), AX; \
	VPADDD  (SI)(AX*4), Yd, Yd

// RECT2 is RECT1 for windows 2 entries apart: the sums at sixteen
// consecutive positions, of which the even ones are kept (VSHUFPS picks
// 0,2,8,10 | 4,6,12,14, VPERMQ puts the qwords in order).
#define RECT2(off, Yd) \
	MOVLQSX off+0(DI), AX; \
	VMOVDQU (SI)(AX*4), Yd; \
	VMOVDQU 32(SI)(AX*4), Y15; \
	MOVLQSX off+4(DI), AX; \
	VPSUBD  (SI)(AX*4), Yd, Yd; \
	VPSUBD  32(SI)(AX*4), Y15, Y15; \
	MOVLQSX off+8(DI), AX; \
	VPSUBD  (SI)(AX*4), Yd, Yd; \
	VPSUBD  32(SI)(AX*4), Y15, Y15; \
	MOVLQSX off+12(DI), AX; \
	VPADDD  (SI)(AX*4), Yd, Yd; \
	VPADDD  32(SI)(AX*4), Y15, Y15; \
	VSHUFPS $0x88, Y15, Yd, Yd; \
	VPERMQ  $0xD8, Yd, Yd

// LEAVES adds to the accumulators Y12 (lanes 0-3) and Y13 (lanes 4-7)
// each lane's leaf, given its feature f in Y0: leaf[1] where
// f·inv ≥ threshold, leaf[0] otherwise.
#define LEAVES \
	VMULPS       Y14, Y0, Y0; \
	VBROADCASTSS 60(DI), Y1; \
	VCMPPS       $0x1D, Y1, Y0, Y0; \
	VPMOVSXDQ    X0, Y2; \
	VEXTRACTI128 $1, Y0, X3; \
	VPMOVSXDQ    X3, Y3; \
	VBROADCASTSD 64(DI), Y4; \
	VBROADCASTSD 72(DI), Y5; \
	VBLENDVPD    Y2, Y5, Y4, Y6; \
	VBLENDVPD    Y3, Y5, Y4, Y7; \
	VADDPD       Y6, Y12, Y12; \
	VADDPD       Y7, Y13, Y13

// func haarStage8(base *int32, step int, stumps []haarStump, inv *[8]float32, thr float64) uint8
//
// No FMA: each product is rounded, then the sum, as the scalar Go code
// does.
TEXT ·haarStage8(SB), NOSPLIT, $0-57
	MOVQ base+0(FP), SI
	MOVQ stumps_base+16(FP), DI
	MOVQ stumps_len+24(FP), CX
	MOVQ inv+40(FP), DX
	VMOVUPS (DX), Y14
	VXORPD  Y12, Y12, Y12
	VXORPD  Y13, Y13, Y13
	TESTQ   CX, CX
	JZ      done
	MOVQ    step+8(FP), DX
	CMPQ    DX, $1
	JNE     loop2

loop1:
	RECT1(0, Y0)
	VCVTDQ2PS    Y0, Y0
	VBROADCASTSS 48(DI), Y1
	VMULPS       Y1, Y0, Y0
	RECT1(16, Y2)
	VCVTDQ2PS    Y2, Y2
	VBROADCASTSS 52(DI), Y1
	VMULPS       Y1, Y2, Y2
	VADDPS       Y2, Y0, Y0
	MOVL         56(DI), AX
	ANDL         $0x7fffffff, AX
	JZ           two1
	RECT1(32, Y2)
	VCVTDQ2PS    Y2, Y2
	VBROADCASTSS 56(DI), Y1
	VMULPS       Y1, Y2, Y2
	VADDPS       Y2, Y0, Y0

two1:
	LEAVES
	ADDQ $80, DI
	DECQ CX
	JNZ  loop1
	JMP  done

loop2:
	RECT2(0, Y0)
	VCVTDQ2PS    Y0, Y0
	VBROADCASTSS 48(DI), Y1
	VMULPS       Y1, Y0, Y0
	RECT2(16, Y2)
	VCVTDQ2PS    Y2, Y2
	VBROADCASTSS 52(DI), Y1
	VMULPS       Y1, Y2, Y2
	VADDPS       Y2, Y0, Y0
	MOVL         56(DI), AX
	ANDL         $0x7fffffff, AX
	JZ           two2
	RECT2(32, Y2)
	VCVTDQ2PS    Y2, Y2
	VBROADCASTSS 56(DI), Y1
	VMULPS       Y1, Y2, Y2
	VADDPS       Y2, Y0, Y0

two2:
	LEAVES
	ADDQ $80, DI
	DECQ CX
	JNZ  loop2

done:
	VBROADCASTSD thr+48(FP), Y0
	VCMPPD       $0x0D, Y0, Y12, Y1
	VMOVMSKPD    Y1, AX
	VCMPPD       $0x0D, Y0, Y13, Y2
	VMOVMSKPD    Y2, BX
	SHLQ         $4, BX
	ORQ          BX, AX
	MOVB         AL, ret+56(FP)
	VZEROUPPER
	RET
