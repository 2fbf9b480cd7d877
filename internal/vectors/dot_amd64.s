#include "textflag.h"

// func dotAVX2(a, b []float32) float32
//
// Four 8-wide FMA accumulators over 32 floats a round, then 8 at a time,
// then one at a time; the accumulators are summed at the end.
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

loop32:
	CMPQ CX, $32
	JL   loop8
	VMOVUPS     (SI), Y4
	VMOVUPS     32(SI), Y5
	VMOVUPS     64(SI), Y6
	VMOVUPS     96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         loop32

loop8:
	CMPQ CX, $8
	JL   reduce
	VMOVUPS     (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         loop8

reduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0

scalar:
	CMPQ        CX, $0
	JE          done
	VMOVSS      (SI), X1
	VFMADD231SS (DI), X1, X0
	ADDQ        $4, SI
	ADDQ        $4, DI
	DECQ        CX
	JMP         scalar

done:
	VZEROUPPER
	MOVSS X0, ret+48(FP)
	RET

// func dotQAVX2(a []float32, b []int8) float32
//
// Like dotAVX2 with b's bytes widened to int32 and converted to float32
// on the way (VPMOVSXBD, VCVTDQ2PS); len(a) is a multiple of 8.
TEXT ·dotQAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

qloop32:
	CMPQ CX, $32
	JL   qloop8
	VPMOVSXBD   (DI), Y4
	VPMOVSXBD   8(DI), Y5
	VPMOVSXBD   16(DI), Y6
	VPMOVSXBD   24(DI), Y7
	VCVTDQ2PS   Y4, Y4
	VCVTDQ2PS   Y5, Y5
	VCVTDQ2PS   Y6, Y6
	VCVTDQ2PS   Y7, Y7
	VFMADD231PS (SI), Y4, Y0
	VFMADD231PS 32(SI), Y5, Y1
	VFMADD231PS 64(SI), Y6, Y2
	VFMADD231PS 96(SI), Y7, Y3
	ADDQ        $128, SI
	ADDQ        $32, DI
	SUBQ        $32, CX
	JMP         qloop32

qloop8:
	CMPQ CX, $8
	JL   qreduce
	VPMOVSXBD   (DI), Y4
	VCVTDQ2PS   Y4, Y4
	VFMADD231PS (SI), Y4, Y0
	ADDQ        $32, SI
	ADDQ        $8, DI
	SUBQ        $8, CX
	JMP         qloop8

qreduce:
	VADDPS       Y1, Y0, Y0
	VADDPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func prefetchRowsAsm(base []int8, stride int, ids []uint32)
//
// PREFETCHT0 for each row's first min(stride, 256) bytes, a cache line
// at a time.
TEXT ·prefetchRowsAsm(SB), NOSPLIT, $0-56
	MOVQ base_base+0(FP), SI
	MOVQ stride+24(FP), DX
	MOVQ ids_base+32(FP), DI
	MOVQ ids_len+40(FP), CX
	MOVQ DX, R8
	CMPQ R8, $256
	JLE  prow
	MOVQ $256, R8

prow:
	TESTQ CX, CX
	JZ    pdone
	MOVL  (DI), AX
	IMULQ DX, AX
	ADDQ  SI, AX
	XORQ  BX, BX

pline:
	PREFETCHT0 (AX)(BX*1)
	ADDQ       $64, BX
	CMPQ       BX, R8
	JL         pline
	ADDQ       $4, DI
	DECQ       CX
	JMP        prow

pdone:
	RET

// func dotQQAVX2(a, b []int8) int32
//
// Sixteen bytes of each at a time widened to int16 (VPMOVSXBW), multiplied
// and summed in pairs into int32 (VPMADDWD); len(a) is a multiple of 16,
// len(b) ≥ len(a). 127·127·2048 fits an int32 with room.
TEXT ·dotQQAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1

qqloop32:
	CMPQ CX, $32
	JL   qqloop16
	VPMOVSXBW (SI), Y4
	VPMOVSXBW (DI), Y5
	VPMOVSXBW 16(SI), Y6
	VPMOVSXBW 16(DI), Y7
	VPMADDWD  Y5, Y4, Y4
	VPMADDWD  Y7, Y6, Y6
	VPADDD    Y4, Y0, Y0
	VPADDD    Y6, Y1, Y1
	ADDQ      $32, SI
	ADDQ      $32, DI
	SUBQ      $32, CX
	JMP       qqloop32

qqloop16:
	CMPQ CX, $16
	JL   qqreduce
	VPMOVSXBW (SI), Y4
	VPMOVSXBW (DI), Y5
	VPMADDWD  Y5, Y4, Y4
	VPADDD    Y4, Y0, Y0
	ADDQ      $16, SI
	ADDQ      $16, DI
	SUBQ      $16, CX
	JMP       qqloop16

qqreduce:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPHADDD      X0, X0, X0
	VPHADDD      X0, X0, X0
	VZEROUPPER
	MOVL         X0, ret+48(FP)
	RET

// func dot8AVX2(q, rows []float32, out *[8]float32)
//
// The inner products of q with eight rows of len(q) values each, back to
// back in rows: each 8-float block of q is loaded once and multiplied
// into eight accumulators, one per row (a load per FMA fewer than eight
// calls of dotAVX2, and no horizontal sum per row); the eight sums are
// reduced together at the end. len(q) is a multiple of 8, len(rows) ≥
// 8·len(q).
TEXT ·dot8AVX2(SB), NOSPLIT, $0-56
	MOVQ q_base+0(FP), SI
	MOVQ q_len+8(FP), CX
	MOVQ rows_base+24(FP), DI
	MOVQ out+48(FP), DX
	MOVQ CX, R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	LEAQ (R8)(R8*4), R10
	LEAQ (R9)(R9*1), R11
	MOVQ R8, R12
	SHLQ $3, R12
	SUBQ R8, R12
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

r8loop:
	CMPQ        CX, $8
	JL          r8reduce
	VMOVUPS     (SI), Y8
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R8*1), Y8, Y1
	VFMADD231PS (DI)(R8*2), Y8, Y2
	VFMADD231PS (DI)(R9*1), Y8, Y3
	VFMADD231PS (DI)(R8*4), Y8, Y4
	VFMADD231PS (DI)(R10*1), Y8, Y5
	VFMADD231PS (DI)(R11*1), Y8, Y6
	VFMADD231PS (DI)(R12*1), Y8, Y7
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JMP         r8loop

r8reduce:
	VHADDPS    Y1, Y0, Y0
	VHADDPS    Y3, Y2, Y2
	VHADDPS    Y5, Y4, Y4
	VHADDPS    Y7, Y6, Y6
	VHADDPS    Y2, Y0, Y0
	VHADDPS    Y6, Y4, Y4
	VPERM2F128 $0x20, Y4, Y0, Y1
	VPERM2F128 $0x31, Y4, Y0, Y2
	VADDPS     Y2, Y1, Y1
	VMOVUPS    Y1, (DX)
	VZEROUPPER
	RET
