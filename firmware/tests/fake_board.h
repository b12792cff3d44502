/* An in-memory board for tests and the fuzzer: a queue of received bytes (with quiet
 * gaps), the bytes the device wrote, and clocks the test controls. */
#ifndef ESPT_FAKE_BOARD_H
#define ESPT_FAKE_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define FAKE_CHIP "fake-chip"
#define FAKE_CPU_MHZ 160u
#define FAKE_RX_BUFFER_BYTES 256u

/* Empty queues, clocks at zero, reads unlimited, no failures. */
void fake_board_reset(void);

/* Queue bytes for the device to read. */
void fake_board_input(const uint8_t *data, size_t n);
/* Queue a quiet gap: the read that reaches it returns 0 and the clock moves on by
 * ESPT_FRAME_TIMEOUT_MS, as if the link went quiet there. */
void fake_board_gap(void);
/* Queued bytes and gaps not read yet. */
size_t fake_board_remaining(void);

/* At most n bytes per read (1 = byte by byte); 0 = no limit. */
void fake_board_set_read_max(size_t n);
/* Once the queue is empty, reads fail (the link closed) instead of waiting. */
void fake_board_close_link(void);
/* espt_board_init fails; writes fail after n more successful ones (-1: never). */
void fake_board_fail_init(int fail);
void fake_board_fail_writes_after(long n);

/* Clocks. A read of an empty queue waits: the clock moves on by its time-out. */
void fake_board_advance_ms(uint32_t ms);
void fake_board_tick(uint64_t cycles, uint64_t micros);
/* What espt_board_counter_unit() reports (ESPT_COUNTER_*; cycles after a reset). */
void fake_board_set_counter_unit(uint8_t unit);

/* Bytes written by the device since the last reset or take. */
const uint8_t *fake_board_output(size_t *n);
void fake_board_take_output(void);
/* 1 if the device wrote more than the capture holds (the rest was dropped). */
int fake_board_output_overflowed(void);

unsigned long fake_board_idle_calls(void);
unsigned long fake_board_write_calls(void);

#endif
