/* The board interface: everything the portable core needs from a chip.
 * Implementations: boards/esp32 (ESP-IDF), boards/posix (host gcc, a file descriptor),
 * boards/qemu_rv32 (emulated RV32IMC core). */
#ifndef ESPT_BOARD_H
#define ESPT_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up the serial link (and whatever else the board needs). 0 on success. */
int espt_board_init(void);

/* Read up to n bytes, waiting at most timeout_ms for the first one.
 * Returns the count read (0 on time-out), negative on a fatal link error. */
int espt_board_read(uint8_t *buf, size_t n, uint32_t timeout_ms);

/* Write all n bytes (blocking). 0 on success, negative on a fatal link error. */
int espt_board_write(const uint8_t *buf, size_t n);

/* Free-running counters. Cycles: the CPU cycle counter (retired instructions on the
 * emulated core); may wrap only after 2^64. */
uint64_t espt_board_cycles(void);
/* What espt_board_cycles() counts: ESPT_COUNTER_* (engine.h, from protocol_spec.h):
 * cycles on a chip, instructions on the emulated core, nanoseconds on the host. */
uint8_t espt_board_counter_unit(void);
uint64_t espt_board_micros(void);
uint32_t espt_board_millis(void);

uint32_t espt_board_cpu_mhz(void);
const char *espt_board_chip(void);

/* Bytes the receive path can hold while the device is busy inferring. */
uint32_t espt_board_rx_buffer_bytes(void);

/* Called between requests: feed a watchdog, yield to other tasks. May be empty. */
void espt_board_idle(void);

#ifdef __cplusplus
}
#endif
#endif
