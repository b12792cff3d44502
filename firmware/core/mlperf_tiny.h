/* The device side of the MLPerf Tiny benchmark API (mlcommons/tiny, benchmark/api) in
 * performance and accuracy mode, over board.h and engine.h: text commands ending in
 * '%', replies as lines ending in CRLF, "m-ready" after every command. Written from the
 * protocol the API defines; docs/mlperf-tiny.md lists the commands, the replies and
 * where this implementation is stricter than the reference one.
 *
 * A firmware speaks it instead of esptiny's protocol when built with
 * -DESPT_PROTOCOL_MLPERF_TINY=1 (see firmware_main.h). */
#ifndef ESPT_MLPERF_TINY_H
#define ESPT_MLPERF_TINY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The API's command buffer (EE_CMD_SIZE): longer commands are refused. */
#define ESPT_MLPERF_CMD_SIZE 80u
/* The db buffer (the API's MAX_DB_INPUT_SIZE, 96x96x3): the largest `db load N`. */
#ifndef ESPT_MLPERF_DB_BYTES
#define ESPT_MLPERF_DB_BYTES (96u * 96u * 3u)
#endif
/* The largest output tensor `results` reports. */
#ifndef ESPT_MLPERF_OUT_BYTES
#define ESPT_MLPERF_OUT_BYTES 4096u
#endif
/* The loop's receive chunk and reply buffer, static like the buffers above. */
#define ESPT_MLPERF_RX_CHUNK 256u
#define ESPT_MLPERF_TX_BYTES 128u
/* Largest N and W `infer N W` takes (at most 999999999). */
#ifndef ESPT_MLPERF_MAX_COUNT
#define ESPT_MLPERF_MAX_COUNT 999999999u
#endif
/* What `name` reports: m-name-dut-[ESPT_MLPERF_VENDOR]. */
#ifndef ESPT_MLPERF_VENDOR
#define ESPT_MLPERF_VENDOR "esptiny"
#endif
/* What `profile` reports as m-profile-[...]. */
#define ESPT_MLPERF_PROFILE "ULPMark for tinyML Firmware V0.0.1"
/* XORed into every input byte loaded in the tensor's own form. 0x80 turns the official
 * data sets' uint8 pixels (image classification, visual wake words) into the int8 input
 * the reference firmware makes of them (pixel - 128). */
#ifndef ESPT_MLPERF_INPUT_XOR
#define ESPT_MLPERF_INPUT_XOR 0x00u
#endif
/* ESPT_MLPERF_MODEL ("ic01", "kws01", "vww01", "ad01") may be defined to name the task
 * `profile` reports; otherwise it is told from the input tensor's shape. */

/* Initialise the board and the engine and send the boot lines (timestamp mode, a
 * timestamp, m-init-done, m-ready). 0, or negative if the board or the link failed. */
int espt_mlperf_init(void);

/* Feed received bytes: every '%' runs the command before it. 0, negative on a fatal
 * link error. */
int espt_mlperf_feed(const uint8_t *data, size_t n);

/* Read once (at most read_timeout_ms) and feed what came. 0, negative on a fatal
 * link error. */
int espt_mlperf_poll(uint32_t read_timeout_ms);

/* v as the API's "%0.3f" prints it, NUL-terminated into buf (at least
 * ESPT_MLPERF_FLOAT_CHARS bytes); returns the length. For the tests. */
#define ESPT_MLPERF_FLOAT_CHARS 48u
size_t espt_mlperf_float3(float v, char *buf);

/* espt_mlperf_init(), then espt_mlperf_poll() until a fatal link error (returned). */
int espt_mlperf_main(void);

#ifdef __cplusplus
}
#endif
#endif
