/*
 * L2 payload of turtle-vmm's device mode: 16-bit real mode, loaded at
 * 0000:1000 like the other payloads.  It drives QEMU's edu through BAR0 the
 * way a driver would: ID reads, the liveness check, a factorial, and a DMA
 * round trip it programs itself.  EDI counts every BAR access, so
 * turtle-vmm can compare the exits it saw with the accesses made.
 *
 * Assembled and linked into turtle-vmm; the host only copies the bytes
 * between edu_payload and edu_payload_end into L2 RAM.  Only relative jumps,
 * so the code runs wherever it is copied to.
 */
#include "edu-payload.h"

        .section .rodata
        .code16
        .globl  edu_payload
        .globl  edu_payload_end

/* Wait until the edu clears the DMA run bit; the polls count as accesses. */
.macro wait_dma
1:      movl    EDU_REG_DMA_CMD, %eax
        incl    %edi
        testb   $EDU_DMA_RUN, %al
        jnz     1b
.endm

edu_payload:
        movw    $(EDU_BAR_GPA >> 4), %ax
        movw    %ax, %ds                /* DS: the BAR window */
        xorw    %ax, %ax
        movw    %ax, %es                /* ES: L2 RAM (inputs, results) */
        xorl    %edi, %edi

        movl    %es:EDU_IN_READS, %ecx
        movb    $EDU_MARK_READS, %al
        outb    %al, $EDU_PORT_MARK
2:      movl    EDU_REG_ID, %eax
        incl    %edi
        decl    %ecx
        jnz     2b
        movl    %eax, %es:EDU_OUT_ID
        movb    $EDU_MARK_READS_DONE, %al
        outb    %al, $EDU_PORT_MARK

        movl    $EDU_LIVE_VALUE, EDU_REG_LIVE
        movl    EDU_REG_LIVE, %eax
        addl    $2, %edi
        movl    %eax, %es:EDU_OUT_LIVE

        movl    %es:EDU_IN_FACT, %eax
        movl    %eax, EDU_REG_FACT
        incl    %edi
3:      movl    EDU_REG_STATUS, %eax
        incl    %edi
        testb   $1, %al
        jnz     3b
        movl    EDU_REG_FACT, %eax
        incl    %edi
        movl    %eax, %es:EDU_OUT_FACT

        /* L2 RAM -> edu buffer; the count register keeps its value for the way back. */
        movl    $EDU_DMA_SRC, EDU_REG_DMA_SRC
        movl    $EDU_DMA_BUF, EDU_REG_DMA_DST
        movl    %es:EDU_IN_DMA_LEN, %eax
        movl    %eax, EDU_REG_DMA_CNT
        movl    $EDU_DMA_RUN, EDU_REG_DMA_CMD
        addl    $4, %edi
        wait_dma

        /* edu buffer -> another L2 RAM area, compared by turtle-vmm */
        movl    $EDU_DMA_BUF, EDU_REG_DMA_SRC
        movl    $EDU_DMA_DST, EDU_REG_DMA_DST
        movl    $(EDU_DMA_RUN | EDU_DMA_TO_RAM), EDU_REG_DMA_CMD
        addl    $3, %edi
        wait_dma

        movl    %edi, %es:EDU_OUT_ACCESSES
        movb    $EDU_MARK_DONE, %al
        outb    %al, $EDU_PORT_MARK
4:      hlt
        jmp     4b
edu_payload_end:

        .code64
        .section .note.GNU-stack, "", @progbits
