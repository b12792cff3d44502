/* Board self-test (make selftest): checks on the emulated core that the counters mean
 * what board.c says (exact instruction counts; QEMU's mtime advancing 1 ns per
 * instruction), then that the PMP enforces the 400 KB RAM limit. It prints lines
 * on the UART and ends with a store past RAM, which must trap (QEMU exit status 64 +
 * mcause 7 = 71). tests/test_qemu.py reads the lines. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "device.h"

extern uint8_t __espt_ram_origin[], __espt_ram_bytes[];

/* QEMU virt's CLINT mtime (10 MHz virtual time), read only to check that relation. */
static uint64_t mtime_ns(void)
{
    volatile uint32_t *lo = (volatile uint32_t *)0x0200BFF8u, *hi = lo + 1;
    uint32_t h, l;
    do {
        h = *hi;
        l = *lo;
    } while (h != *hi);
    return (((uint64_t)h << 32) | l) * 100u;
}

static void put(const char *s)
{
    espt_board_write((const uint8_t *)s, strlen(s));
}

static void put_u64(uint64_t v)
{
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(buf + i);
}

/* A loop of exactly 2n + 1 instructions (li, then addi + bnez n times), n >= 1. */
static uint64_t instructions_for_loop(uint32_t n)
{
    uint64_t before = espt_board_cycles();
    __asm__ volatile("mv t0, %0\n"
                     "1: addi t0, t0, -1\n"
                     "bnez t0, 1b\n" ::"r"(n)
                     : "t0");
    return espt_board_cycles() - before;
}

int espt_device_main(void)
{
    espt_board_init();
    put("espt-selftest\n");
    put("chip ");
    put(espt_board_chip());
    put("\n");
    const uint32_t ns[] = {1, 1000, 100000};
    for (unsigned i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        put("loop ");
        put_u64(ns[i]);
        put(" instructions ");
        put_u64(instructions_for_loop(ns[i]));
        put("\n");
    }
    uint64_t t0 = espt_board_micros(), n0 = mtime_ns();
    uint64_t c0 = espt_board_cycles();
    instructions_for_loop(10000000u);
    uint64_t c1 = espt_board_cycles(), n1 = mtime_ns(), t1 = espt_board_micros();
    put("instructions ");
    put_u64(c1 - c0);
    put(" micros ");
    put_u64(t1 - t0);
    put(" mtime_ns ");
    put_u64(n1 - n0);
    put("\n");
    put("store past ram\n");
    volatile uint32_t *past = (volatile uint32_t *)(__espt_ram_origin + (uintptr_t)__espt_ram_bytes);
    *past = 1; /* must trap: mcause 7, store access fault */
    put("no trap\n");
    return 0;
}
