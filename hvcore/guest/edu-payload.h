/*
 * What turtle-vmm's device mode and its L2 payload (edu-payload.S) agree
 * on: the L2-physical layout, the marker port and QEMU's edu registers.
 * Included from C and from assembly, so only #defines.
 */
#ifndef TURTLES_EDU_PAYLOAD_H
#define TURTLES_EDU_PAYLOAD_H

/* BAR0 window in L2-physical space; real mode reaches it through DS. */
#define EDU_BAR_GPA 0x20000

/* Inputs turtle-vmm writes into L2 RAM before the run (u32 each). */
#define EDU_IN_READS   0x0500 /* how many times to read the ID register */
#define EDU_IN_FACT    0x0504 /* n for the factorial */
#define EDU_IN_DMA_LEN 0x0508 /* bytes per DMA */

/* Results the payload leaves in L2 RAM (u32 each). */
#define EDU_OUT_ID       0x0600
#define EDU_OUT_LIVE     0x0604
#define EDU_OUT_FACT     0x0608
#define EDU_OUT_ACCESSES 0x060c /* BAR accesses the payload made */

/* DMA: L2 RAM is mapped for the device at IOVA = L2-physical address. */
#define EDU_DMA_SRC 0x3000  /* L2 RAM the edu reads from */
#define EDU_DMA_DST 0x4000  /* L2 RAM the edu writes back to */
#define EDU_DMA_BUF 0x40000 /* the edu's own buffer, in its device addresses */

/* `out` to this port with AL = one of the marks, so phases can be timed. */
#define EDU_PORT_MARK       0x10
#define EDU_MARK_READS      1 /* the ID reads start */
#define EDU_MARK_READS_DONE 2
#define EDU_MARK_DONE       3 /* all results are in RAM; a hlt follows */

/* QEMU's edu device (docs/specs/edu.txt in QEMU). */
#define EDU_REG_ID      0x00
#define EDU_REG_LIVE    0x04       /* reads back the complement of what was written */
#define EDU_LIVE_VALUE  0x12345678 /* what the payload writes there */
#define EDU_REG_FACT    0x08
#define EDU_REG_STATUS  0x20 /* bit 0: factorial in progress */
#define EDU_REG_DMA_SRC 0x80
#define EDU_REG_DMA_DST 0x88
#define EDU_REG_DMA_CNT 0x90
#define EDU_REG_DMA_CMD 0x98 /* bit 0: run (cleared when done), bit 1: edu -> RAM */
#define EDU_DMA_RUN     1
#define EDU_DMA_TO_RAM  2

#endif
