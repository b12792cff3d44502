/* The device loop in steps, so tests, fuzzers and boards with their own main loop can
 * drive it. espt_device_main() (device.h) is espt_device_init() then
 * espt_device_poll(ESPT_POLL_MS) until a fatal link error. */
#ifndef ESPT_DEVICE_STEP_H
#define ESPT_DEVICE_STEP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How long one poll waits for the first received byte. */
#ifndef ESPT_POLL_MS
#define ESPT_POLL_MS 10
#endif
/* Bytes read from the board per call. */
#ifndef ESPT_RX_CHUNK
#define ESPT_RX_CHUNK 256
#endif

/* Initialise the board and the engine, reset the parser, send READY (seq 0).
 * 0 on success, negative if the board failed to start or the link failed. */
int espt_device_init(void);

/* Read once (waiting at most read_timeout_ms), serve every complete request in what
 * arrived, apply the frame time-out when the link was quiet. 0 to go on, negative on a
 * fatal link error. */
int espt_device_poll(uint32_t read_timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
