/* The host-runtime board: board.h over two byte callbacks, so a host process (the virtual
 * board, host/esptiny/devices/hostrt.py) can drive the firmware core's own device loop
 * through ctypes. The clock is CLOCK_MONOTONIC; there is no cycle counter (cycles read 0). */
#ifndef ESPT_BOARD_HOSTRT_H
#define ESPT_BOARD_HOSTRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* As espt_board_read / espt_board_write: count read (0 on time-out) or 0 written,
 * negative on a fatal link error. */
typedef int (*espt_hostrt_read_fn)(uint8_t *buf, size_t n, uint32_t timeout_ms);
typedef int (*espt_hostrt_write_fn)(const uint8_t *buf, size_t n);

/* Set the link and what INFO reports (chip is copied, cut to 63 bytes). Call before
 * espt_device_init(); until then every read and write fails. */
void espt_hostrt_board(espt_hostrt_read_fn read, espt_hostrt_write_fn write, const char *chip,
                       uint32_t cpu_mhz, uint32_t rx_buffer_bytes);

#ifdef __cplusplus
}
#endif
#endif
