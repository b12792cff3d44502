/* Frames, the resynchronising parser and payload packing (docs/protocol.md). */
#include "protocol.h"

#include <string.h>

#include "crc32.h"

/* ---- little-endian fields ----------------------------------------------- */

void espt_put_u16(uint8_t *out, uint16_t v)
{
    out[0] = (uint8_t)(v & 0xFFu);
    out[1] = (uint8_t)(v >> 8);
}

void espt_put_u32(uint8_t *out, uint32_t v)
{
    espt_put_u16(out, (uint16_t)(v & 0xFFFFu));
    espt_put_u16(out + 2, (uint16_t)(v >> 16));
}

void espt_put_u64(uint8_t *out, uint64_t v)
{
    espt_put_u32(out, (uint32_t)(v & 0xFFFFFFFFu));
    espt_put_u32(out + 4, (uint32_t)(v >> 32));
}

uint16_t espt_get_u16(const uint8_t *in)
{
    return (uint16_t)(in[0] | (uint16_t)(in[1] << 8));
}

uint32_t espt_get_u32(const uint8_t *in)
{
    return (uint32_t)espt_get_u16(in) | ((uint32_t)espt_get_u16(in + 2) << 16);
}

/* ---- frames ------------------------------------------------------------- */

size_t espt_frame_encode(uint8_t *out, size_t cap, uint8_t type, uint16_t seq,
                         const uint8_t *payload, size_t len)
{
    size_t end = ESPT_HEADER_BYTES + len;
    if (len > 0xFFFFu || cap < ESPT_FRAME_OVERHEAD || len > cap - ESPT_FRAME_OVERHEAD)
        return 0;
    if (len > 0 && payload != out + ESPT_HEADER_BYTES)
        memmove(out + ESPT_HEADER_BYTES, payload, len);
    out[0] = ESPT_MAGIC0;
    out[1] = ESPT_MAGIC1;
    out[2] = type;
    espt_put_u16(out + 3, seq);
    espt_put_u16(out + 5, (uint16_t)len);
    espt_put_u32(out + end, espt_crc32(out + 2, end - 2));
    return end + ESPT_CRC_BYTES;
}

/* ---- parser ------------------------------------------------------------- */

void espt_parser_init(espt_parser_t *p, uint16_t max_payload)
{
    p->max_payload = max_payload > ESPT_MAX_PAYLOAD ? (uint16_t)ESPT_MAX_PAYLOAD : max_payload;
    p->head = 0;
    p->count = 0;
    p->consume = 0;
    p->noise_bytes = 0;
}

size_t espt_parser_pending(const espt_parser_t *p)
{
    return p->count - p->consume;
}

static void drop(espt_parser_t *p, size_t n)
{
    p->head += n;
    p->count -= n;
    if (p->count == 0)
        p->head = 0;
}

/* Forget the frame handed out by the previous event. */
static void settle(espt_parser_t *p)
{
    if (p->consume) {
        drop(p, p->consume);
        p->consume = 0;
    }
}

/* Step 1 of "Parsing": drop bytes up to the first A5 5A; keep a trailing lone A5. */
static void resync(espt_parser_t *p)
{
    const uint8_t *b = p->buf + p->head;
    size_t i = 0;
    while (i + 1 < p->count && !(b[i] == ESPT_MAGIC0 && b[i + 1] == ESPT_MAGIC1))
        i++;
    if (i + 1 >= p->count && !(p->count > 0 && b[p->count - 1] == ESPT_MAGIC0))
        i = p->count; /* no frame start, not even a trailing first magic byte */
    p->noise_bytes += (uint32_t)i;
    drop(p, i);
}

size_t espt_parser_push(espt_parser_t *p, const uint8_t *data, size_t n)
{
    size_t room;
    settle(p);
    if (p->head + p->count + n > sizeof p->buf && p->head > 0) {
        memmove(p->buf, p->buf + p->head, p->count);
        p->head = 0;
    }
    room = sizeof p->buf - p->head - p->count;
    if (n > room)
        n = room;
    if (n > 0)
        memcpy(p->buf + p->head + p->count, data, n);
    p->count += n;
    return n;
}

static void error_event(espt_event_t *ev, uint8_t code, uint16_t seq, uint16_t len)
{
    ev->kind = ESPT_EVENT_ERROR;
    ev->type = 0;
    ev->code = code;
    ev->seq = seq;
    ev->len = len;
    ev->payload = NULL;
}

int espt_parser_next(espt_parser_t *p, espt_event_t *ev)
{
    const uint8_t *b;
    uint16_t seq, len;
    size_t end;

    settle(p);
    resync(p);
    if (p->count < ESPT_HEADER_BYTES)
        return 0;
    b = p->buf + p->head;
    seq = espt_get_u16(b + 3);
    len = espt_get_u16(b + 5);
    if (len > p->max_payload) {
        error_event(ev, ESPT_ERR_OVERSIZE, seq, len);
        drop(p, 1);
        return 1;
    }
    end = ESPT_HEADER_BYTES + (size_t)len;
    if (p->count < end + ESPT_CRC_BYTES)
        return 0;
    if (espt_get_u32(b + end) != espt_crc32(b + 2, end - 2)) {
        error_event(ev, ESPT_ERR_CRC, seq, len);
        drop(p, 1);
        return 1;
    }
    ev->kind = ESPT_EVENT_FRAME;
    ev->type = b[2];
    ev->code = 0;
    ev->seq = seq;
    ev->len = len;
    ev->payload = b + ESPT_HEADER_BYTES;
    p->consume = end + ESPT_CRC_BYTES;
    return 1;
}

int espt_parser_timeout(espt_parser_t *p, espt_event_t *ev)
{
    const uint8_t *b;
    settle(p);
    b = p->buf + p->head;
    if (p->count < 2 || b[0] != ESPT_MAGIC0 || b[1] != ESPT_MAGIC1)
        return 0;
    if (p->count >= ESPT_HEADER_BYTES)
        error_event(ev, ESPT_ERR_TRUNCATED, espt_get_u16(b + 3), espt_get_u16(b + 5));
    else
        error_event(ev, ESPT_ERR_TRUNCATED, ESPT_SEQ_UNKNOWN, 0);
    drop(p, 1);
    return 1;
}

/* ---- payloads ----------------------------------------------------------- */

size_t espt_pack_ready(uint8_t *out, uint8_t status, uint32_t model_crc32)
{
    out[0] = ESPT_PROTOCOL_VERSION;
    out[1] = status;
    espt_put_u32(out + 2, model_crc32);
    return ESPT_READY_BYTES;
}

/* u8 dtype, u8 rank, u16 dims[4], f32 scale, i32 zero point: 18 bytes. */
static void pack_tensor(uint8_t *out, const espt_tensor_info_t *t)
{
    uint32_t scale_bits;
    int i;
    memcpy(&scale_bits, &t->scale, sizeof scale_bits); /* IEEE-754 binary32 on every target */
    out[0] = t->dtype;
    out[1] = t->rank;
    for (i = 0; i < 4; i++)
        espt_put_u16(out + 2 + 2 * i, t->dims[i]);
    espt_put_u32(out + 10, scale_bits);
    espt_put_u32(out + 14, (uint32_t)t->zero_point);
}

static size_t pack_str(uint8_t *out, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > ESPT_INFO_STR_MAX)
        n = ESPT_INFO_STR_MAX;
    out[0] = (uint8_t)n;
    if (n > 0)
        memcpy(out + 1, s, n);
    return 1 + n;
}

/* The engine's detail, only when it has one (old hosts ignore trailing bytes). Read
 * within the array: the engine's string need not be terminated. */
static size_t pack_detail(uint8_t *out, const char *detail)
{
    size_t n = 0;
    while (n < ESPT_INFO_STR_MAX && detail[n] != '\0')
        n++;
    if (n == 0)
        return 0;
    out[0] = (uint8_t)n;
    memcpy(out + 1, detail, n);
    return 1 + n;
}

size_t espt_pack_info(uint8_t *out, size_t cap, const espt_info_fields_t *f)
{
    const espt_model_info_t *m = f->model;
    size_t n;
    if (cap < ESPT_INFO_MAX_BYTES)
        return 0;
    out[0] = ESPT_PROTOCOL_VERSION;
    out[1] = m->status;
    out[2] = m->engine;
    out[3] = f->flags;
    espt_put_u32(out + 4, m->model_crc32);
    espt_put_u32(out + 8, m->model_bytes);
    espt_put_u32(out + 12, m->arena_bytes);
    espt_put_u32(out + 16, m->status == ESPT_STATUS_READY ? m->arena_used_bytes : 0u);
    espt_put_u32(out + 20, f->cpu_mhz);
    espt_put_u16(out + 24, f->max_payload);
    espt_put_u16(out + 26, f->rx_buffer_bytes);
    pack_tensor(out + 28, &m->input);
    pack_tensor(out + 46, &m->output);
    n = ESPT_INFO_FIXED_BYTES;
    n += pack_str(out + n, f->chip);
    n += pack_str(out + n, f->firmware_version);
    n += pack_detail(out + n, m->detail);
    return n;
}

size_t espt_pack_infer_head(uint8_t *out, uint64_t cycles, uint32_t micros)
{
    espt_put_u64(out, cycles);
    espt_put_u32(out + 8, micros);
    return ESPT_INFER_HEAD_BYTES;
}

size_t espt_pack_error(uint8_t *out, uint8_t code, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n > ESPT_ERROR_TEXT_MAX)
        n = ESPT_ERROR_TEXT_MAX;
    out[0] = code;
    out[1] = 0;
    if (n > 0)
        memcpy(out + 2, text, n);
    return 2 + n;
}

const char *espt_error_name(uint8_t code)
{
#define ESPT_ERROR_CASE_(name, value, text) case ESPT_ERR_##name: return text;
    switch (code) {
    ESPT_SPEC_ERRORS(ESPT_ERROR_CASE_)
    default: return "error";
    }
#undef ESPT_ERROR_CASE_
}
