/* board.h on QEMU's riscv32 virt machine: an ESP32-C3-class RV32IMC core.
 *
 * Counters: espt_board_cycles() is minstret, the retired-instruction counter. QEMU runs
 * with -icount shift=0, so it is exact and identical from run to run; it is not an
 * ESP32-C3 cycle count. The board's clock counts those instructions at the ESP32-C3's
 * 160 MHz, one per cycle: micros() = minstret / 160. So an INFER reply's microseconds
 * are the estimated ESP32-C3 time under that stated assumption (CPI 1, a lower bound),
 * consistent with its cycles and the 160 MHz in INFO. (QEMU's own clock, the CLINT's
 * mtime at 0x0200BFF8, ticks at 10 MHz of virtual time, and under -icount shift=0 one
 * instruction is one virtual nanosecond: a 1 GHz core, which no ESP32 is. The
 * self-test checks that relation.) */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "firmware_main.h"
#include "engine.h" /* ESPT_COUNTER_* */
#include "qemu_rv32.h"
#include "uart16550.h"

#ifndef ESPT_QEMU_RX_BUFFER_BYTES
/* The UART holds 16 bytes, but QEMU takes bytes from its host socket only when the
 * FIFO has room, so the rest wait in the host's socket buffers (>= 64 KB on Linux)
 * and none is lost while the core is busy: 8 KB in flight is safe. */
#define ESPT_QEMU_RX_BUFFER_BYTES 8192u
#endif

#ifndef ESPT_QEMU_CPU_MHZ
#error "ESPT_QEMU_CPU_MHZ: the modelled chip's clock (the Makefile passes it)"
#endif
#define CPU_MHZ ESPT_QEMU_CPU_MHZ /* the ESP32-C3's clock; QEMU itself has none */
#define SIFIVE_TEST (*(volatile uint32_t *)0x00100000u) /* QEMU's exit device */

/* csrr/csrw under -march=rv32imc assemble with GCC 12 + binutils 2.40 only with
 * -misa-spec=2.2 (Zicsr was still part of I then); adding _zicsr to -march instead
 * breaks picolibc's multilib choice. */
#define CSR_WRITE(name, v) __asm__ volatile("csrw " #name ", %0" ::"r"((uint32_t)(v)))

static inline uint32_t read_minstret(void)
{
    uint32_t v;
    __asm__ volatile("csrr %0, minstret" : "=r"(v));
    return v;
}

static inline uint32_t read_minstreth(void)
{
    uint32_t v;
    __asm__ volatile("csrr %0, minstreth" : "=r"(v));
    return v;
}

/* Linker script symbols (qemu_rv32.ld). */
extern uint8_t __data_start[], __data_end[], __data_source[], __bss_start[], __bss_end[];
extern uint8_t __espt_flash_origin[], __espt_ram_origin[], __espt_ram_bytes[];

static void uart_puts(const char *s)
{
    while (*s)
        uart16550_tx((uint8_t)*s++);
}

static void uart_hex(uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    uart_puts("0x");
    for (int shift = 28; shift >= 0; shift -= 4)
        uart16550_tx((uint8_t)digits[(v >> shift) & 0xF]);
}

/* Stop QEMU with an exit status: 0 for a clean stop, else the status given. */
void __attribute__((noreturn)) espt_qemu_exit(uint32_t status)
{
    SIFIVE_TEST = status == 0 ? 0x5555u : ((status << 16) | 0x3333u);
    for (;;) {
    }
}

void __attribute__((noreturn)) espt_qemu_trap(uint32_t mcause, uint32_t mepc, uint32_t mtval)
{
    uart_puts("\r\nespt-qemu: trap mcause=");
    uart_hex(mcause);
    uart_puts(" mepc=");
    uart_hex(mepc);
    uart_puts(" mtval=");
    uart_hex(mtval);
    uart_puts("\r\n");
    espt_qemu_exit(ESPT_QEMU_EXIT_TRAP_BASE + (mcause & 0x3Fu));
}

/* Make "flash" read/execute-only and forbid everything past the 400 KB of RAM, as on
 * the chip: a stack overflow (the stack sits at the bottom of RAM) or a write outside
 * RAM traps instead of silently using QEMU's larger memory. Locked entries bind
 * machine mode; addresses no entry covers (the UART, the CLINT) stay accessible. */
static void pmp_setup(void)
{
    const uint32_t flash = (uint32_t)(uintptr_t)__espt_flash_origin;
    const uint32_t ram = (uint32_t)(uintptr_t)__espt_ram_origin;
    const uint32_t ram_end = ram + (uint32_t)(uintptr_t)__espt_ram_bytes;
    enum { R = 0x01, W = 0x02, X = 0x04, TOR = 0x08, L = 0x80 };
    CSR_WRITE(pmpaddr0, flash >> 2);      /* entry 0: the base for entry 1's range */
    CSR_WRITE(pmpaddr1, ram >> 2);        /* [flash, ram): read, execute */
    CSR_WRITE(pmpaddr2, ram_end >> 2);    /* [ram, ram_end): read, write */
    CSR_WRITE(pmpaddr3, 0xFFFFFFFFu >> 2); /* [ram_end, 4 GB): nothing */
    CSR_WRITE(pmpcfg0, (uint32_t)(L | TOR | R | X) << 8 | (uint32_t)(L | TOR | R | W) << 16
                           | (uint32_t)(L | TOR) << 24);
}

void __attribute__((noreturn)) espt_qemu_cstart(void)
{
    memcpy(__data_start, __data_source, (size_t)(__data_end - __data_start));
    memset(__bss_start, 0, (size_t)(__bss_end - __bss_start));
    pmp_setup();
    int rc = espt_firmware_main();
    uart_puts("\r\nespt-qemu: the device loop returned ");
    uart_hex((uint32_t)rc);
    uart_puts("\r\n");
    espt_qemu_exit(ESPT_QEMU_EXIT_DEVICE_RETURNED);
}

/* ---- board.h ------------------------------------------------------------------ */

int espt_board_init(void)
{
    uart16550_init();
    return 0;
}

int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    if (n == 0)
        return 0;
    if (!uart16550_rx_ready()) {
        const uint64_t start = espt_board_cycles();
        const uint64_t cycles = (uint64_t)timeout_ms * (CPU_MHZ * 1000u);
        while (!uart16550_rx_ready()) {
            if (espt_board_cycles() - start >= cycles)
                return 0;
        }
    }
    size_t got = 0;
    while (got < n && uart16550_rx_ready())
        buf[got++] = uart16550_rx();
    return (int)got;
}

int espt_board_write(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        uart16550_tx(buf[i]);
    return 0;
}

uint64_t espt_board_cycles(void)
{
    uint32_t hi, lo;
    do {
        hi = read_minstreth();
        lo = read_minstret();
    } while (hi != read_minstreth());
    return ((uint64_t)hi << 32) | lo;
}

/* minstret: retired instructions, exact under -icount shift=0. */
uint8_t espt_board_counter_unit(void)
{
    return ESPT_COUNTER_INSTRUCTIONS;
}

uint64_t espt_board_micros(void)
{
    return espt_board_cycles() / CPU_MHZ;
}

uint32_t espt_board_millis(void)
{
    return (uint32_t)(espt_board_cycles() / (CPU_MHZ * 1000u));
}

uint32_t espt_board_cpu_mhz(void)
{
    return CPU_MHZ;
}

const char *espt_board_chip(void)
{
    return "qemu-rv32imc (ESP32-C3-class)";
}

uint32_t espt_board_rx_buffer_bytes(void)
{
    return ESPT_QEMU_RX_BUFFER_BYTES;
}

void espt_board_idle(void)
{
}
