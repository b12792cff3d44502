/* board.h over callbacks (board_hostrt.h). */
#define _POSIX_C_SOURCE 199309L /* clock_gettime */

#include "board_hostrt.h"

#include <string.h>
#include <time.h>

#include "board.h"
#include "engine.h" /* ESPT_COUNTER_* */

static espt_hostrt_read_fn read_cb;
static espt_hostrt_write_fn write_cb;
static char chip_name[64] = "hostrt";
static uint32_t mhz;
static uint32_t rx_bytes = 4096u;

void espt_hostrt_board(espt_hostrt_read_fn read, espt_hostrt_write_fn write, const char *chip,
                       uint32_t cpu_mhz, uint32_t rx_buffer_bytes)
{
    read_cb = read;
    write_cb = write;
    if (chip != NULL) {
        strncpy(chip_name, chip, sizeof chip_name - 1);
        chip_name[sizeof chip_name - 1] = '\0';
    }
    mhz = cpu_mhz;
    rx_bytes = rx_buffer_bytes;
}

int espt_board_init(void)
{
    return read_cb != NULL && write_cb != NULL ? 0 : -1;
}

int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    int got;
    if (read_cb == NULL)
        return -1;
    got = read_cb(buf, n, timeout_ms);
    return got > (int)n ? -1 : got; /* never trust a count beyond the buffer */
}

int espt_board_write(const uint8_t *buf, size_t n)
{
    return write_cb != NULL ? write_cb(buf, n) : -1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* No cycle counter: host time is not cycles, so none are made of it. */
uint64_t espt_board_cycles(void) { return 0; }
/* No counter: the host runtime is not profiled (bench --profile refuses --port sim). */
uint8_t espt_board_counter_unit(void) { return ESPT_COUNTER_NANOSECONDS; }
uint64_t espt_board_micros(void) { return now_ns() / 1000u; }
uint32_t espt_board_millis(void) { return (uint32_t)(now_ns() / 1000000u); }
uint32_t espt_board_cpu_mhz(void) { return mhz; }
const char *espt_board_chip(void) { return chip_name; }
uint32_t espt_board_rx_buffer_bytes(void) { return rx_bytes; }
void espt_board_idle(void) {}
