//go:build !race

#include "textflag.h"
#include "go_asm.h"

// The cache fast paths of getput.go (getBulkGo, putBulkGo) in one frameless
// call: a caller's GetBulk or PutBulk, inlined, lands here, and only when
// the cache cannot serve alone do we jump to the Go slow path, which
// returns straight to the caller. Go's memmove moves up to 256 bytes (a
// bulk of 32 handles) with 16-byte moves after a chain of size tests; with
// AVX2 the copy below moves 256 bytes through eight 32-byte registers.
//
// Registers: AX = p, BX = c, DX = c.hdr, R8 = cache length, CX = n,
// SI = copy source, DI = copy destination.

// COPY moves CX uint64s from SI to DI, which do not overlap. Its 16-byte
// half is ring/fast_amd64.s's COPY (assembly cannot share it across
// packages): a fix to one belongs in the other. It clobbers
// CX, SI, DI, R9 and vector registers 0-7. The arguments name its labels.
#define COPY(LSSE, LBLOCK, LQUAD, LVDONE, LFOUR, LSINGLES, LSINGLE, LDONE) \
	CMPB ·useAVX2(SB), $0; \
	JEQ  LSSE; \
LBLOCK: \
	CMPQ    CX, $32; \
	JB      LQUAD; \
	VMOVDQU 0(SI), Y0; \
	VMOVDQU 32(SI), Y1; \
	VMOVDQU 64(SI), Y2; \
	VMOVDQU 96(SI), Y3; \
	VMOVDQU 128(SI), Y4; \
	VMOVDQU 160(SI), Y5; \
	VMOVDQU 192(SI), Y6; \
	VMOVDQU 224(SI), Y7; \
	VMOVDQU Y0, 0(DI); \
	VMOVDQU Y1, 32(DI); \
	VMOVDQU Y2, 64(DI); \
	VMOVDQU Y3, 96(DI); \
	VMOVDQU Y4, 128(DI); \
	VMOVDQU Y5, 160(DI); \
	VMOVDQU Y6, 192(DI); \
	VMOVDQU Y7, 224(DI); \
	ADDQ    $256, SI; \
	ADDQ    $256, DI; \
	SUBQ    $32, CX; \
	JMP     LBLOCK; \
LQUAD: \
	CMPQ    CX, $4; \
	JB      LVDONE; \
	VMOVDQU 0(SI), Y0; \
	VMOVDQU Y0, 0(DI); \
	ADDQ    $32, SI; \
	ADDQ    $32, DI; \
	SUBQ    $4, CX; \
	JMP     LQUAD; \
LVDONE: \
	VZEROUPPER; \
	JMP LSINGLES; \
LSSE: \
	CMPQ CX, $4; \
	JB   LSINGLES; \
LFOUR: \
	MOVUPS 0(SI), X0; \
	MOVUPS 16(SI), X1; \
	MOVUPS X0, 0(DI); \
	MOVUPS X1, 16(DI); \
	ADDQ   $32, SI; \
	ADDQ   $32, DI; \
	SUBQ   $4, CX; \
	CMPQ   CX, $4; \
	JAE    LFOUR; \
LSINGLES: \
	TESTQ CX, CX; \
	JEQ   LDONE; \
LSINGLE: \
	MOVQ 0(SI), R9; \
	MOVQ R9, 0(DI); \
	ADDQ $8, SI; \
	ADDQ $8, DI; \
	DECQ CX; \
	JNE  LSINGLE; \
LDONE:

// func getBulk(p *Pool, c *Cache, objs []uint64) error
TEXT ·getBulk(SB), NOSPLIT|NOFRAME, $0-56
	MOVQ  c+8(FP), BX
	TESTQ BX, BX
	JEQ   slow
	MOVQ  p+0(FP), AX
	CMPQ  Cache_pool(BX), AX
	JNE   slow
	MOVQ  Cache_hdr(BX), DX
	MOVL  cacheHeader_len(DX), R8 // zero-extends: R8 = l
	MOVQ  objs_len+24(FP), CX
	CMPQ  CX, R8
	JHI   slow                    // n > l
	CMPL  R8, Cache_getMax(BX)
	JHI   slow                    // corrupt length, or a Debug pool
	SUBQ  CX, R8
	MOVL  R8, cacheHeader_len(DX) // shrink before handing out: see handOff
	MOVQ  Cache_base(BX), SI
	LEAQ  0(SI)(R8*8), SI
	MOVQ  objs_base+16(FP), DI
	COPY(gsse, gblock, gquad, gvdone, gfour, gsingles, gsingle, gdone)
	MOVQ  $0, ret_itable+40(FP)
	MOVQ  $0, ret_data+48(FP)
	RET

slow:
	JMP ·getBulkGo(SB)

// func putBulk(p *Pool, c *Cache, objs []uint64) error
TEXT ·putBulk(SB), NOSPLIT|NOFRAME, $0-56
	MOVQ  c+8(FP), BX
	TESTQ BX, BX
	JEQ   slow
	MOVQ  p+0(FP), AX
	CMPQ  Cache_pool(BX), AX
	JNE   slow
	MOVQ  Cache_hdr(BX), DX
	MOVL  cacheHeader_len(DX), R8 // zero-extends: R8 = l
	MOVL  Cache_putMax(BX), R10
	CMPQ  R8, R10
	JHI   slow                    // corrupt length, or above the threshold
	SUBQ  R8, R10
	MOVQ  objs_len+24(FP), CX
	CMPQ  CX, R10
	JHI   slow                    // n > putMax-l: would cross the threshold
	LEAQ  0(R8)(CX*1), R11
	MOVQ  Cache_base(BX), DI
	LEAQ  0(DI)(R8*8), DI
	MOVQ  objs_base+16(FP), SI
	COPY(psse, pblock, pquad, pvdone, pfour, psingles, psingle, pdone)
	MOVL  R11, cacheHeader_len(DX)
	MOVQ  $0, ret_itable+40(FP)
	MOVQ  $0, ret_data+48(FP)
	RET

slow:
	JMP ·putBulkGo(SB)
