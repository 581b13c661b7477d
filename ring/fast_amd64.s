//go:build !race

#include "textflag.h"
#include "go_asm.h"

// The ring protocol of ring_go.go, for amd64. Under TSO a plain aligned
// load is an acquire load and a plain aligned store a release store, so the
// tails are read and written with MOVL; several producers (or consumers)
// claim with LOCK CMPXCHGL on the head, as DPDK does. Single- and
// multi-producer versions are separate functions so that the single ones
// keep the smallest argument frames: every byte of arguments and results is
// a store and a load on each call.
//
// Registers: DI = r, BX = r.hdr, CX = head claimed from, R9 = n,
// R10 = head+n, R8 = capacity.

#define PROD_HEAD (header_prod+headTail_head)
#define PROD_TAIL (header_prod+headTail_tail)
#define CONS_HEAD (header_cons+headTail_head)
#define CONS_TAIL (header_cons+headTail_tail)

// COPY moves CNT uint64s from SRC to DST, which do not overlap (mempool's
// getput_amd64.s repeats it beside a 32-byte variant: fix both): four at a
// time with 16-byte moves, then one at a time. It advances SRC and DST and
// clobbers CNT, TMP, X0 and X1. The last four arguments name its labels.
#define COPY(SRC, DST, CNT, TMP, LFOUR, LSINGLES, LSINGLE, LDONE) \
	CMPQ CNT, $4; \
	JB   LSINGLES; \
LFOUR: \
	MOVUPS 0(SRC), X0; \
	MOVUPS 16(SRC), X1; \
	MOVUPS X0, 0(DST); \
	MOVUPS X1, 16(DST); \
	ADDQ   $32, SRC; \
	ADDQ   $32, DST; \
	SUBQ   $4, CNT; \
	CMPQ   CNT, $4; \
	JAE    LFOUR; \
LSINGLES: \
	TESTQ CNT, CNT; \
	JEQ   LDONE; \
LSINGLE: \
	MOVQ 0(SRC), TMP; \
	MOVQ TMP, 0(DST); \
	ADDQ $8, SRC; \
	ADDQ $8, DST; \
	DECQ CNT; \
	JNE  LSINGLE; \
LDONE:

// SIZE sets R9 to how many of the wanted entries to move, given AVAIL
// (free slots or filled entries) in DX: AVAIL is first clamped to the
// capacity, so corrupt indices never move more than that; a bulk wants all
// or nothing (jump to LNONE), a burst as many as there are. It jumps to
// LNONE when R9 would be 0.
#define SIZE(LFITS, LNONE) \
	CMPL    DX, R8; \
	CMOVLHI R8, DX; \
	MOVQ    objs_len+16(FP), R9; \
	CMPQ    R9, DX; \
	JLS     LFITS; \
	CMPB    burst+32(FP), $0; \
	JEQ     LNONE; \
	MOVQ    DX, R9; \
LFITS: \
	TESTQ R9, R9; \
	JEQ   LNONE

// PIECES splits the R9 entries from slot CX & mask on into R12 entries up to
// the last slot and R13 from slot 0, and sets R11 to the address of the
// first slot.
#define PIECES \
	MOVL    CX, R11; \
	ANDL    Ring_mask(DI), R11; \
	MOVL    Ring_size(DI), R12; \
	SUBL    R11, R12; \
	CMPQ    R9, R12; \
	CMOVQLS R9, R12; \
	MOVQ    R9, R13; \
	SUBQ    R12, R13; \
	MOVQ    Ring_slots(DI), AX; \
	LEAQ    (AX)(R11*8), R11

// func spEnqueueN(r *Ring, objs []uint64, burst bool) uint32
TEXT ·spEnqueueN(SB), NOSPLIT|NOFRAME, $0-44
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL Ring_capacity(DI), R8
	MOVL PROD_HEAD(BX), CX
	MOVL CONS_TAIL(BX), DX  // acquire: consumers are done with the slots before it
	ADDL R8, DX
	SUBL CX, DX             // free = capacity + cons.tail - head
	SIZE(spEnqFits, spEnqNone)
	LEAL (CX)(R9*1), R10
	MOVL R10, PROD_HEAD(BX) // only this producer reads it
	PIECES
	MOVQ objs_base+8(FP), SI
	MOVQ R11, DX
	COPY(SI, DX, R12, AX, spEnqFour, spEnqSingles, spEnqSingle, spEnqDone)
	MOVQ Ring_slots(DI), DX
	COPY(SI, DX, R13, AX, spEnqFour2, spEnqSingles2, spEnqSingle2, spEnqDone2)
	MOVL R10, PROD_TAIL(BX) // release: the slots are written
	MOVL R9, ret+40(FP)
	RET

spEnqNone:
	MOVL $0, ret+40(FP)
	RET

// func mpEnqueueN(r *Ring, objs []uint64, burst bool) (n, head uint32, pending bool)
TEXT ·mpEnqueueN(SB), NOSPLIT|NOFRAME, $0-49
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL Ring_capacity(DI), R8
	MOVL PROD_HEAD(BX), CX

mpEnqClaim:
	MOVL CONS_TAIL(BX), DX
	ADDL R8, DX
	SUBL CX, DX
	SIZE(mpEnqFits, mpEnqNone)
	LEAL (CX)(R9*1), R10
	MOVL CX, AX
	LOCK
	CMPXCHGL R10, PROD_HEAD(BX)
	JEQ  mpEnqClaimed
	MOVL AX, CX             // another producer claimed first: retry from its head
	JMP  mpEnqClaim

mpEnqClaimed:
	MOVL R9, n+40(FP)
	MOVL CX, head+44(FP)
	PIECES
	MOVQ objs_base+8(FP), SI
	MOVQ R11, DX
	COPY(SI, DX, R12, AX, mpEnqFour, mpEnqSingles, mpEnqSingle, mpEnqDone)
	MOVQ Ring_slots(DI), DX
	COPY(SI, DX, R13, AX, mpEnqFour2, mpEnqSingles2, mpEnqSingle2, mpEnqDone2)
	MOVL $const_spinLimit, R11

mpEnqWait:
	CMPL PROD_TAIL(BX), CX  // earlier claims published?
	JNE  mpEnqSpin
	MOVL R10, PROD_TAIL(BX) // release: the slots are written
	MOVB $0, pending+48(FP)
	RET

mpEnqSpin:
	PAUSE
	DECL R11
	JNE  mpEnqWait
	MOVB $1, pending+48(FP) // let the caller wait, preemptibly
	RET

mpEnqNone:
	MOVL $0, n+40(FP)
	MOVL $0, head+44(FP)
	MOVB $0, pending+48(FP)
	RET

// func scDequeueN(r *Ring, objs []uint64, burst bool) uint32
TEXT ·scDequeueN(SB), NOSPLIT|NOFRAME, $0-44
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL Ring_capacity(DI), R8
	MOVL CONS_HEAD(BX), CX
	MOVL PROD_TAIL(BX), DX  // acquire: producers wrote the slots before it
	SUBL CX, DX             // entries = prod.tail - head
	SIZE(scDeqFits, scDeqNone)
	LEAL (CX)(R9*1), R10
	MOVL R10, CONS_HEAD(BX) // only this consumer reads it
	PIECES
	MOVQ objs_base+8(FP), DX
	MOVQ R11, SI
	COPY(SI, DX, R12, AX, scDeqFour, scDeqSingles, scDeqSingle, scDeqDone)
	MOVQ Ring_slots(DI), SI
	COPY(SI, DX, R13, AX, scDeqFour2, scDeqSingles2, scDeqSingle2, scDeqDone2)
	MOVL R10, CONS_TAIL(BX) // release: the slots are read
	MOVL R9, ret+40(FP)
	RET

scDeqNone:
	MOVL $0, ret+40(FP)
	RET

// func mcDequeueN(r *Ring, objs []uint64, burst bool) (n, head uint32, pending bool)
TEXT ·mcDequeueN(SB), NOSPLIT|NOFRAME, $0-49
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL Ring_capacity(DI), R8
	MOVL CONS_HEAD(BX), CX

mcDeqClaim:
	MOVL PROD_TAIL(BX), DX
	SUBL CX, DX
	SIZE(mcDeqFits, mcDeqNone)
	LEAL (CX)(R9*1), R10
	MOVL CX, AX
	LOCK
	CMPXCHGL R10, CONS_HEAD(BX)
	JEQ  mcDeqClaimed
	MOVL AX, CX
	JMP  mcDeqClaim

mcDeqClaimed:
	MOVL R9, n+40(FP)
	MOVL CX, head+44(FP)
	PIECES
	MOVQ objs_base+8(FP), DX
	MOVQ R11, SI
	COPY(SI, DX, R12, AX, mcDeqFour, mcDeqSingles, mcDeqSingle, mcDeqDone)
	MOVQ Ring_slots(DI), SI
	COPY(SI, DX, R13, AX, mcDeqFour2, mcDeqSingles2, mcDeqSingle2, mcDeqDone2)
	MOVL $const_spinLimit, R11

mcDeqWait:
	CMPL CONS_TAIL(BX), CX
	JNE  mcDeqSpin
	MOVL R10, CONS_TAIL(BX)
	MOVB $0, pending+48(FP)
	RET

mcDeqSpin:
	PAUSE
	DECL R11
	JNE  mcDeqWait
	MOVB $1, pending+48(FP)
	RET

mcDeqNone:
	MOVL $0, n+40(FP)
	MOVL $0, head+44(FP)
	MOVB $0, pending+48(FP)
	RET

// func spEnqueue1(r *Ring, obj uint64) bool
TEXT ·spEnqueue1(SB), NOSPLIT|NOFRAME, $0-17
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL PROD_HEAD(BX), CX
	MOVL CONS_TAIL(BX), DX
	ADDL Ring_capacity(DI), DX
	SUBL CX, DX             // free; a corrupt value still writes one masked slot
	JEQ  spEnq1Full
	LEAL 1(CX), R10
	MOVL R10, PROD_HEAD(BX)
	ANDL Ring_mask(DI), CX
	MOVQ Ring_slots(DI), SI
	MOVQ obj+8(FP), R8
	MOVQ R8, (SI)(CX*8)
	MOVL R10, PROD_TAIL(BX)
	MOVB $1, ret+16(FP)
	RET

spEnq1Full:
	MOVB $0, ret+16(FP)
	RET

// func mpEnqueue1(r *Ring, obj uint64) (ok bool, head uint32, pending bool)
TEXT ·mpEnqueue1(SB), NOSPLIT|NOFRAME, $0-25
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL PROD_HEAD(BX), CX

mpEnq1Claim:
	MOVL CONS_TAIL(BX), DX
	ADDL Ring_capacity(DI), DX
	SUBL CX, DX
	JEQ  mpEnq1Full
	LEAL 1(CX), R10
	MOVL CX, AX
	LOCK
	CMPXCHGL R10, PROD_HEAD(BX)
	JEQ  mpEnq1Claimed
	MOVL AX, CX
	JMP  mpEnq1Claim

mpEnq1Claimed:
	MOVB $1, ok+16(FP)
	MOVL CX, head+20(FP)
	MOVL CX, DX
	ANDL Ring_mask(DI), DX
	MOVQ Ring_slots(DI), SI
	MOVQ obj+8(FP), R8
	MOVQ R8, (SI)(DX*8)
	MOVL $const_spinLimit, R11

mpEnq1Wait:
	CMPL PROD_TAIL(BX), CX
	JNE  mpEnq1Spin
	MOVL R10, PROD_TAIL(BX)
	MOVB $0, pending+24(FP)
	RET

mpEnq1Spin:
	PAUSE
	DECL R11
	JNE  mpEnq1Wait
	MOVB $1, pending+24(FP)
	RET

mpEnq1Full:
	MOVB $0, ok+16(FP)
	MOVL $0, head+20(FP)
	MOVB $0, pending+24(FP)
	RET

// func scDequeue1(r *Ring) (obj uint64, ok bool)
TEXT ·scDequeue1(SB), NOSPLIT|NOFRAME, $0-17
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL CONS_HEAD(BX), CX
	MOVL PROD_TAIL(BX), DX
	CMPL DX, CX
	JEQ  scDeq1Empty
	LEAL 1(CX), R10
	MOVL R10, CONS_HEAD(BX)
	ANDL Ring_mask(DI), CX
	MOVQ Ring_slots(DI), SI
	MOVQ (SI)(CX*8), R8
	MOVL R10, CONS_TAIL(BX)
	MOVQ R8, obj+8(FP)
	MOVB $1, ok+16(FP)
	RET

scDeq1Empty:
	MOVQ $0, obj+8(FP)
	MOVB $0, ok+16(FP)
	RET

// func mcDequeue1(r *Ring) (obj uint64, ok bool, head uint32, pending bool)
TEXT ·mcDequeue1(SB), NOSPLIT|NOFRAME, $0-25
	MOVQ r+0(FP), DI
	MOVQ Ring_hdr(DI), BX
	MOVL CONS_HEAD(BX), CX

mcDeq1Claim:
	MOVL PROD_TAIL(BX), DX
	CMPL DX, CX
	JEQ  mcDeq1Empty
	LEAL 1(CX), R10
	MOVL CX, AX
	LOCK
	CMPXCHGL R10, CONS_HEAD(BX)
	JEQ  mcDeq1Claimed
	MOVL AX, CX
	JMP  mcDeq1Claim

mcDeq1Claimed:
	MOVL CX, DX
	ANDL Ring_mask(DI), DX
	MOVQ Ring_slots(DI), SI
	MOVQ (SI)(DX*8), R8
	MOVQ R8, obj+8(FP)
	MOVB $1, ok+16(FP)
	MOVL CX, head+20(FP)
	MOVL $const_spinLimit, R11

mcDeq1Wait:
	CMPL CONS_TAIL(BX), CX
	JNE  mcDeq1Spin
	MOVL R10, CONS_TAIL(BX)
	MOVB $0, pending+24(FP)
	RET

mcDeq1Spin:
	PAUSE
	DECL R11
	JNE  mcDeq1Wait
	MOVB $1, pending+24(FP)
	RET

mcDeq1Empty:
	MOVQ $0, obj+8(FP)
	MOVB $0, ok+16(FP)
	MOVL $0, head+20(FP)
	MOVB $0, pending+24(FP)
	RET
