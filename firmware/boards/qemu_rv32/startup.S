/* Reset entry and trap entry for the emulated RV32IMC core (QEMU virt, -bios none).
 * Machine mode only, one hart, no interrupts: the UART is polled. */

    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack_top
    la      tp, __tls_base          /* picolibc's errno lives in TLS */
    la      t0, espt_trap_entry
    csrw    mtvec, t0
    csrw    mie, zero
    call    espt_qemu_cstart        /* board.c: copy .data, zero .bss, PMP, main */
1:  j       1b                      /* espt_qemu_cstart does not return */

/* Any exception (illegal instruction, access fault from the PMP, misaligned access)
 * ends here: hand the cause to C, which prints it and stops QEMU. The handler runs on
 * the top of the stack region, so a stack overflow can still be reported. */
    .text
    .balign 4
    .globl espt_trap_entry
espt_trap_entry:
    la      sp, __stack_top
    csrr    a0, mcause
    csrr    a1, mepc
    csrr    a2, mtval
    call    espt_qemu_trap
2:  j       2b
