#include "fake_board.h"

#include <string.h>

#include "board.h"
#include "protocol.h"

#ifndef FAKE_IN_CAP
#define FAKE_IN_CAP (1u << 20)
#endif
#ifndef FAKE_OUT_CAP
#define FAKE_OUT_CAP (1u << 22)
#endif
#define FAKE_GAPS_CAP 4096

static uint8_t in_q[FAKE_IN_CAP];
static size_t in_len, in_pos;
static size_t gaps[FAKE_GAPS_CAP]; /* input positions where the link goes quiet */
static size_t n_gaps, gap_pos;
static uint8_t out[FAKE_OUT_CAP];
static size_t out_len;
static int out_overflow;
static uint64_t now_us, cycles;
static uint8_t counter_unit = ESPT_COUNTER_CYCLES;
static size_t read_max;
static int link_closes, init_fails;
static long writes_left;
static unsigned long idle_calls, write_calls;

void fake_board_reset(void)
{
    in_len = in_pos = n_gaps = gap_pos = out_len = read_max = 0;
    out_overflow = link_closes = init_fails = 0;
    now_us = cycles = 0;
    counter_unit = ESPT_COUNTER_CYCLES;
    writes_left = -1;
    idle_calls = write_calls = 0;
}

void fake_board_input(const uint8_t *data, size_t n)
{
    if (n > FAKE_IN_CAP - in_len)
        n = FAKE_IN_CAP - in_len;
    if (n > 0)
        memcpy(in_q + in_len, data, n);
    in_len += n;
}

void fake_board_gap(void)
{
    if (n_gaps < FAKE_GAPS_CAP)
        gaps[n_gaps++] = in_len;
}

size_t fake_board_remaining(void)
{
    return (in_len - in_pos) + (n_gaps - gap_pos);
}

void fake_board_set_read_max(size_t n) { read_max = n; }
void fake_board_set_counter_unit(uint8_t unit) { counter_unit = unit; }
void fake_board_close_link(void) { link_closes = 1; }
void fake_board_fail_init(int fail) { init_fails = fail; }
void fake_board_fail_writes_after(long n) { writes_left = n; }
void fake_board_advance_ms(uint32_t ms) { now_us += (uint64_t)ms * 1000u; }

void fake_board_tick(uint64_t c, uint64_t us)
{
    cycles += c;
    now_us += us;
}

const uint8_t *fake_board_output(size_t *n)
{
    *n = out_len;
    return out;
}

void fake_board_take_output(void) { out_len = 0; }
int fake_board_output_overflowed(void) { return out_overflow; }
unsigned long fake_board_idle_calls(void) { return idle_calls; }
unsigned long fake_board_write_calls(void) { return write_calls; }

/* ---- board.h ---- */

int espt_board_init(void) { return init_fails ? -1 : 0; }

int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    size_t end = in_len;
    if (gap_pos < n_gaps && gaps[gap_pos] == in_pos) {
        gap_pos++;
        now_us += (uint64_t)ESPT_FRAME_TIMEOUT_MS * 1000u;
        return 0;
    }
    if (gap_pos < n_gaps)
        end = gaps[gap_pos];
    if (in_pos == end) {
        if (link_closes)
            return -1;
        now_us += (uint64_t)timeout_ms * 1000u; /* waited in vain */
        return 0;
    }
    if (n > end - in_pos)
        n = end - in_pos;
    if (read_max && n > read_max)
        n = read_max;
    memcpy(buf, in_q + in_pos, n);
    in_pos += n;
    return (int)n;
}

int espt_board_write(const uint8_t *buf, size_t n)
{
    write_calls++;
    if (writes_left == 0)
        return -1;
    if (writes_left > 0)
        writes_left--;
    if (n > FAKE_OUT_CAP - out_len) {
        n = FAKE_OUT_CAP - out_len;
        out_overflow = 1;
    }
    if (n > 0)
        memcpy(out + out_len, buf, n);
    out_len += n;
    return 0;
}

uint64_t espt_board_cycles(void) { return cycles; }
uint8_t espt_board_counter_unit(void) { return counter_unit; }
uint64_t espt_board_micros(void) { return now_us; }
uint32_t espt_board_millis(void) { return (uint32_t)(now_us / 1000u); }
uint32_t espt_board_cpu_mhz(void) { return FAKE_CPU_MHZ; }
const char *espt_board_chip(void) { return FAKE_CHIP; }
uint32_t espt_board_rx_buffer_bytes(void) { return FAKE_RX_BUFFER_BYTES; }
void espt_board_idle(void) { idle_calls++; }
