/* The serial protocol, device side: frames, the resynchronising parser, payloads.
 * docs/protocol.md is the specification, host/esptiny/protocol.py the host side; both
 * are tested against docs/protocol-vectors.txt. Portable C99, no heap. */
#ifndef ESPT_PROTOCOL_H
#define ESPT_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "protocol_spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every constant comes from protocol_spec.h (the host reads the same file); engine.h
 * makes the limits' enum. */
#define ESPT_SPEC_ENUM_(name, value) ESPT_##name = value,
#define ESPT_SPEC_ENUM_ERR_(name, value, text) ESPT_ERR_##name = value,
enum { ESPT_SPEC_FRAME_TYPES(ESPT_SPEC_ENUM_) };
enum { ESPT_SPEC_ERRORS(ESPT_SPEC_ENUM_ERR_) };

/* Largest payload the device accepts (and sends); INFO reports it. */
#ifndef ESPT_MAX_PAYLOAD
#define ESPT_MAX_PAYLOAD ESPT_DEFAULT_MAX_PAYLOAD
#endif
/* A partial frame is dropped after the link has been quiet this long. */
#ifndef ESPT_FRAME_TIMEOUT_MS
#define ESPT_FRAME_TIMEOUT_MS ESPT_DEFAULT_FRAME_TIMEOUT_MS
#endif

#define ESPT_FRAME_OVERHEAD (ESPT_HEADER_BYTES + ESPT_CRC_BYTES)
#define ESPT_MAX_FRAME (ESPT_MAX_PAYLOAD + ESPT_FRAME_OVERHEAD)
#define ESPT_ERROR_MAX_BYTES (2 + ESPT_ERROR_TEXT_MAX) /* u8 code, u8 0, text */
/* The fixed part, then chip, firmware version and detail: u8 length, bytes each. */
#define ESPT_INFO_MAX_BYTES (ESPT_INFO_FIXED_BYTES + 3 * (1 + ESPT_INFO_STR_MAX))

/* Every reply must fit a payload, and len is a u16. Negative array size = compile error. */
typedef char espt_max_payload_fits_info[(ESPT_MAX_PAYLOAD >= ESPT_INFO_MAX_BYTES) ? 1 : -1];
typedef char espt_max_payload_fits_u16[(ESPT_MAX_PAYLOAD <= 0xFFFF) ? 1 : -1];

/* ---- frames ------------------------------------------------------------- */

/* Write the frame (type, seq, payload) to out. The payload may already sit at
 * out + ESPT_HEADER_BYTES (build replies in place). Returns the frame's size, or 0 when
 * len > 0xFFFF or the frame does not fit cap bytes. */
size_t espt_frame_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t seq,
                         const uint8_t *payload, size_t len);

/* ---- parser ------------------------------------------------------------- */

enum { ESPT_EVENT_FRAME = 1, ESPT_EVENT_ERROR = 2 };

typedef struct {
    uint8_t kind;            /* ESPT_EVENT_* */
    uint8_t type;            /* frame type (frames only) */
    uint8_t code;            /* ESPT_ERR_* (errors only) */
    uint16_t seq;            /* an error's seq is a hint from a header that may be corrupt */
    uint16_t len;            /* payload bytes; for an error, the header's len if it had one */
    const uint8_t *payload;  /* frames only: valid until the next call on the parser */
} espt_event_t;

/* Received bytes live in buf[head .. head + count). A frame handed out as an event is
 * dropped (consume) at the next call, so its payload can be used in place. */
typedef struct {
    uint16_t max_payload;
    size_t head;
    size_t count;
    size_t consume;
    uint32_t noise_bytes;    /* bytes skipped while looking for a frame start */
    uint8_t buf[ESPT_MAX_FRAME];
} espt_parser_t;

/* max_payload is clamped to ESPT_MAX_PAYLOAD (the buffer is sized for that). */
void espt_parser_init(espt_parser_t *p, uint16_t max_payload);

/* Copy in as many of n bytes as fit; returns how many. Drain with espt_parser_next()
 * before pushing the rest: a drained parser always has room for at least one byte. */
size_t espt_parser_push(espt_parser_t *p, const uint8_t *data, size_t n);

/* The next event from the buffered bytes: 1 and *ev filled, or 0 (needs more bytes). */
int espt_parser_next(espt_parser_t *p, espt_event_t *ev);

/* The link went quiet for the frame time-out. If a frame start heads the buffer, emit
 * a `truncated` error and drop one byte (return 1; keep calling espt_parser_next()). */
int espt_parser_timeout(espt_parser_t *p, espt_event_t *ev);

/* Bytes buffered, not yet turned into events. */
size_t espt_parser_pending(const espt_parser_t *p);

/* ---- payloads (little-endian, docs/protocol.md) ------------------------- */

void espt_put_u16(uint8_t *out, uint16_t v);
void espt_put_u32(uint8_t *out, uint32_t v);
void espt_put_u64(uint8_t *out, uint64_t v);
uint16_t espt_get_u16(const uint8_t *in);
uint32_t espt_get_u32(const uint8_t *in);

/* READY: u8 protocol version, u8 status, u32 model CRC32. Writes ESPT_READY_BYTES. */
size_t espt_pack_ready(uint8_t *out, uint8_t status, uint32_t model_crc32);

typedef struct {
    const espt_model_info_t *model;
    uint32_t cpu_mhz;
    uint16_t max_payload;
    uint16_t rx_buffer_bytes;
    uint8_t flags;                /* ESPT_INFO_FLAG_* */
    const char *chip;             /* NUL-terminated; cut to ESPT_INFO_STR_MAX */
    const char *firmware_version; /* NUL-terminated; cut to ESPT_INFO_STR_MAX */
} espt_info_fields_t;

/* INFO_RSP payload, the engine's detail (f->model->detail) last when it is not empty.
 * Returns its size (at most ESPT_INFO_MAX_BYTES), 0 if cap is short. */
size_t espt_pack_info(uint8_t *out, size_t cap, const espt_info_fields_t *f);

/* INFER_RSP head: u64 cycles, u32 microseconds; the output bytes follow. */
size_t espt_pack_infer_head(uint8_t *out, uint64_t cycles, uint32_t micros);

/* ERROR: u8 code, u8 0, then the text cut to ESPT_ERROR_TEXT_MAX bytes (out must hold
 * 2 + ESPT_ERROR_TEXT_MAX). Returns the payload size. */
size_t espt_pack_error(uint8_t *out, uint8_t code, const char *text);

/* The error's name as in docs/protocol.md ("crc", "oversize", ...). */
const char *espt_error_name(uint8_t code);

#ifdef __cplusplus
}
#endif
#endif
