/* Board-specific entry points of the emulated RV32IMC board (beyond board.h). */
#ifndef ESPT_QEMU_RV32_H
#define ESPT_QEMU_RV32_H

#include <stdint.h>

/* Exit statuses QEMU returns (host/esptiny/qemu.py names them). */
#define ESPT_QEMU_EXIT_DEVICE_RETURNED 2u /* espt_device_main returned: fatal link error */
#define ESPT_QEMU_EXIT_TRAP_BASE 64u      /* 64 + mcause: the core took an exception */

/* Stop QEMU: status 0 for a clean stop, else QEMU exits with that status. */
void __attribute__((noreturn)) espt_qemu_exit(uint32_t status);

/* Called by startup.S. */
void __attribute__((noreturn)) espt_qemu_cstart(void);
void __attribute__((noreturn)) espt_qemu_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval);

#endif
