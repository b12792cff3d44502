/* The device loop: serve the protocol (docs/protocol.md) over the board's link with the
 * linked engine. Every buffer is static and bounded; nothing from the host is trusted. */
#include "device.h"

#include <string.h>

#include "board.h"
#include "device_step.h"
#include "engine.h"
#include "profile.h"
#include "protocol.h"

static espt_parser_t parser;
static espt_model_info_t model;
static uint8_t tx[ESPT_MAX_FRAME];       /* one reply, built in place at tx + 7 */
static uint8_t rx_chunk[ESPT_RX_CHUNK];
static uint32_t quiet_since_ms;          /* when the device last heard (or gave up on) bytes */

/* Tensors in pieces (docs/protocol.md): the input being written, contiguous from 0, and
 * the output the last inference left, valid until the input is written again. */
static struct {
    int open;          /* a transfer is under way */
    uint16_t tag;
    uint32_t have;     /* bytes [0, have) of the input tensor hold this transfer's data */
} piece_in;
static struct {
    int valid;
    uint16_t tag;      /* the seq of the INFER_RSP that announced it */
} piece_out;

#define TX_PAYLOAD (tx + ESPT_HEADER_BYTES)

/* ---- error texts without a printf ------------------------------------------ */

typedef struct {
    char s[ESPT_ERROR_TEXT_MAX + 1];
    size_t n;
} text_t;

static void text_str(text_t *t, const char *s)
{
    while (*s && t->n < ESPT_ERROR_TEXT_MAX)
        t->s[t->n++] = *s++;
    t->s[t->n] = '\0';
}

static void text_u32(text_t *t, uint32_t v)
{
    char digits[11];
    size_t i = sizeof digits - 1;
    digits[i] = '\0';
    do {
        digits[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v && i > 0);
    text_str(t, digits + i);
}

static void text_hex8(text_t *t, uint8_t v)
{
    static const char hex[] = "0123456789abcdef";
    char s[5];
    s[0] = '0';
    s[1] = 'x';
    s[2] = hex[v >> 4];
    s[3] = hex[v & 0x0Fu];
    s[4] = '\0';
    text_str(t, s);
}

/* ---- replies ---------------------------------------------------------------- */

/* Send the payload already built at TX_PAYLOAD. */
static int send_reply(uint8_t type, uint16_t seq, size_t len)
{
    size_t n = espt_frame_encode(tx, sizeof tx, type, seq, TX_PAYLOAD, len);
    if (n == 0)
        return -1; /* a reply that does not fit: a bug, never host input */
    return espt_board_write(tx, n) < 0 ? -1 : 0;
}

static int send_error(uint16_t seq, uint8_t code, const char *text)
{
    return send_reply(ESPT_ERROR, seq, espt_pack_error(TX_PAYLOAD, code, text));
}

/* The status's name, or NULL for a status the protocol does not define. */
static const char *status_name(uint8_t status)
{
#define ESPT_STATUS_CASE_(name, value, text) case ESPT_STATUS_##name: return text;
    switch (status) {
    ESPT_SPEC_STATUSES(ESPT_STATUS_CASE_)
    default: return NULL;
    }
#undef ESPT_STATUS_CASE_
}

/* ---- the model as the engine describes it ----------------------------------- */

static uint32_t dtype_bytes(uint8_t dtype)
{
    switch (dtype) {
    case ESPT_DTYPE_FLOAT32: return 4;
    case ESPT_DTYPE_INT16: return 2;
    case ESPT_DTYPE_UINT8:
    case ESPT_DTYPE_INT8: return 1;
    default: return 0;
    }
}

/* Make the tensor packable (rank 1..4, unused dims 1) and say whether it is sound:
 * a known dtype and bytes equal to its shape's size. */
static int tensor_sound(espt_tensor_info_t *t)
{
    uint64_t n = dtype_bytes(t->dtype);
    int sound = n > 0 && t->rank >= 1 && t->rank <= 4;
    int i;
    if (t->rank < 1)
        t->rank = 1;
    if (t->rank > 4)
        t->rank = 4;
    for (i = 0; i < 4; i++) {
        if (i >= t->rank)
            t->dims[i] = 1;
        n *= t->dims[i];
        if (n > 0xFFFFFFFFu) { /* more than bytes (a u32) can say: stop before a wrap */
            sound = 0;
            n = 0;
        }
    }
    return sound && n == t->bytes;
}

/* An engine that reports ready must describe sound tensors (of any size: they travel
 * in pieces when a frame cannot carry them). Otherwise: model invalid. */
static void check_model(espt_model_info_t *m, int init_rc)
{
    int in_ok = tensor_sound(&m->input);
    int out_ok = tensor_sound(&m->output);
    if (status_name(m->status) == NULL)
        m->status = ESPT_STATUS_MODEL_INVALID;
    if (m->status == ESPT_STATUS_READY && init_rc != 0)
        m->status = ESPT_STATUS_MODEL_INVALID;
    if (m->status == ESPT_STATUS_READY && (!in_ok || !out_ok))
        m->status = ESPT_STATUS_MODEL_INVALID;
    if (m->status != ESPT_STATUS_READY)
        m->arena_used_bytes = 0;
}

/* ---- requests --------------------------------------------------------------- */

static int serve_info(uint16_t seq)
{
    espt_info_fields_t f;
    uint32_t rx_bytes = espt_board_rx_buffer_bytes();
    f.model = &model;
    f.cpu_mhz = espt_board_cpu_mhz();
    f.max_payload = (uint16_t)ESPT_MAX_PAYLOAD;
    f.rx_buffer_bytes = (uint16_t)(rx_bytes > 0xFFFFu ? 0xFFFFu : rx_bytes);
    f.flags = ESPT_INFO_FLAG_PIECES;
    f.chip = espt_board_chip();
    f.firmware_version = ESPT_FIRMWARE_VERSION;
    return send_reply(ESPT_INFO_RSP, seq, espt_pack_info(TX_PAYLOAD, ESPT_MAX_PAYLOAD, &f));
}

static int refuse_not_ready(uint16_t seq)
{
    text_t t;
    t.n = 0;
    text_str(&t, "not ready: ");
    text_str(&t, status_name(model.status));
    return send_error(seq, ESPT_ERR_NOT_READY, t.s);
}

/* The input tensor is whole: invoke, answer INFER_RSP with the output when the frame can
 * carry it (else the head alone: the host asks for the output in pieces). */
static int infer(uint16_t seq)
{
    uint8_t *out = TX_PAYLOAD + ESPT_INFER_HEAD_BYTES;
    size_t out_len = model.output.bytes <= ESPT_MAX_PAYLOAD - ESPT_INFER_HEAD_BYTES
        ? (size_t)model.output.bytes : 0;
    uint64_t c0, c1, u0, u1;
    int rc;
    piece_in.open = 0;
    piece_out.valid = 0;
    /* Only the invoke sits between the counter reads. */
    u0 = espt_board_micros();
    c0 = espt_board_cycles();
    rc = espt_engine_invoke();
    c1 = espt_board_cycles();
    u1 = espt_board_micros();
    if (rc != 0)
        return send_error(seq, ESPT_ERR_INVOKE_FAILED, "invoke failed");
    if (out_len > 0 && espt_engine_get_output(0, out, out_len) != 0)
        return send_error(seq, ESPT_ERR_INVOKE_FAILED, "get_output failed");
    piece_out.valid = 1;
    piece_out.tag = seq;
    u1 -= u0;
    espt_pack_infer_head(TX_PAYLOAD, c1 - c0, u1 > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)u1);
    return send_reply(ESPT_INFER_RSP, seq, ESPT_INFER_HEAD_BYTES + out_len);
}

static int serve_infer(const espt_event_t *ev)
{
    text_t t;
    t.n = 0;
    if (model.status != ESPT_STATUS_READY)
        return refuse_not_ready(ev->seq);
    if (ev->len != model.input.bytes) {
        text_str(&t, "INFER_REQ of ");
        text_u32(&t, ev->len);
        text_str(&t, " bytes, input takes ");
        text_u32(&t, model.input.bytes);
        return send_error(ev->seq, ESPT_ERR_BAD_LENGTH, t.s);
    }
    piece_in.open = 0;
    piece_out.valid = 0;
    if (espt_engine_set_input(0, ev->payload, ev->len) != 0)
        return send_error(ev->seq, ESPT_ERR_INVOKE_FAILED, "set_input failed");
    return infer(ev->seq);
}

static int send_ack(uint16_t seq, uint16_t tag, uint32_t have)
{
    espt_put_u16(TX_PAYLOAD, tag);
    espt_put_u32(TX_PAYLOAD + 2, have);
    return send_reply(ESPT_INPUT_ACK, seq, ESPT_PIECE_HEAD_BYTES);
}

/* "piece at O+N past the tensor's B bytes" */
static int refuse_piece(uint16_t seq, const char *what, uint32_t offset, uint32_t n, uint32_t bytes)
{
    text_t t;
    t.n = 0;
    text_str(&t, what);
    text_str(&t, " at ");
    text_u32(&t, offset);
    text_str(&t, "+");
    text_u32(&t, n);
    text_str(&t, " past the tensor's ");
    text_u32(&t, bytes);
    text_str(&t, " bytes");
    return send_error(seq, ESPT_ERR_BAD_LENGTH, t.s);
}

/* INPUT_PART: u16 tag, u32 offset, bytes. Taken only where it continues the transfer
 * (offset 0 starts one); anything else is answered with what the device holds. */
static int serve_input_part(const espt_event_t *ev)
{
    uint16_t tag;
    uint32_t offset, n, skip;
    if (model.status != ESPT_STATUS_READY)
        return refuse_not_ready(ev->seq);
    if (ev->len <= ESPT_PIECE_HEAD_BYTES)
        return send_error(ev->seq, ESPT_ERR_BAD_LENGTH, "INPUT_PART without bytes");
    tag = espt_get_u16(ev->payload);
    offset = espt_get_u32(ev->payload + 2);
    n = (uint32_t)ev->len - ESPT_PIECE_HEAD_BYTES;
    if (offset > model.input.bytes || n > model.input.bytes - offset)
        return refuse_piece(ev->seq, "piece", offset, n, model.input.bytes);
    if (offset == 0) {
        piece_in.open = 1;
        piece_in.tag = tag;
        piece_in.have = 0;
    }
    if (!piece_in.open || piece_in.tag != tag)
        return send_ack(ev->seq, tag, 0);
    if (offset > piece_in.have || offset + n <= piece_in.have) /* a gap, or a duplicate */
        return send_ack(ev->seq, tag, piece_in.have);
    skip = piece_in.have - offset;
    piece_out.valid = 0;
    if (espt_engine_set_input(piece_in.have, ev->payload + ESPT_PIECE_HEAD_BYTES + skip, n - skip) != 0) {
        piece_in.open = 0;
        return send_error(ev->seq, ESPT_ERR_INVOKE_FAILED, "set_input failed");
    }
    piece_in.have = offset + n;
    if (piece_in.have < model.input.bytes)
        return send_ack(ev->seq, tag, piece_in.have);
    return infer(ev->seq);
}

/* OUTPUT_REQ: u16 tag, u32 offset, u16 len -> OUTPUT_PART: u16 tag, u32 offset, bytes. */
static int serve_output_req(const espt_event_t *ev)
{
    uint16_t tag, n;
    uint32_t offset;
    text_t t;
    t.n = 0;
    if (model.status != ESPT_STATUS_READY)
        return refuse_not_ready(ev->seq);
    if (ev->len != ESPT_OUTPUT_REQ_BYTES)
        return send_error(ev->seq, ESPT_ERR_BAD_LENGTH, "OUTPUT_REQ takes 8 bytes");
    tag = espt_get_u16(ev->payload);
    offset = espt_get_u32(ev->payload + 2);
    n = espt_get_u16(ev->payload + 6);
    if (!piece_out.valid || piece_out.tag != tag) {
        text_str(&t, "no output for tag ");
        text_u32(&t, tag);
        return send_error(ev->seq, ESPT_ERR_NO_OUTPUT, t.s);
    }
    if (n == 0 || n > ESPT_MAX_PAYLOAD - ESPT_PIECE_HEAD_BYTES || offset > model.output.bytes
        || n > model.output.bytes - offset)
        return refuse_piece(ev->seq, "output piece", offset, n, model.output.bytes);
    if (espt_engine_get_output(offset, TX_PAYLOAD + ESPT_PIECE_HEAD_BYTES, n) != 0)
        return send_error(ev->seq, ESPT_ERR_INVOKE_FAILED, "get_output failed");
    espt_put_u16(TX_PAYLOAD, tag);
    espt_put_u32(TX_PAYLOAD + 2, offset);
    return send_reply(ESPT_OUTPUT_PART, ev->seq, ESPT_PIECE_HEAD_BYTES + (size_t)n);
}

/* The records are built by profile.c; here only the request's length is checked. */
static int serve_profile(const espt_event_t *ev)
{
    text_t t;
    t.n = 0;
    if (ev->len != ESPT_PROFILE_REQ_BYTES) {
        text_str(&t, "PROFILE_REQ of ");
        text_u32(&t, ev->len);
        text_str(&t, " bytes, takes 2");
        return send_error(ev->seq, ESPT_ERR_BAD_LENGTH, t.s);
    }
    return send_reply(ESPT_PROFILE_RSP, ev->seq,
                      espt_profile_reply(TX_PAYLOAD, ESPT_MAX_PAYLOAD, espt_get_u16(ev->payload)));
}

static int serve(const espt_event_t *ev)
{
    text_t t;
    t.n = 0;
    if (ev->kind == ESPT_EVENT_ERROR) {
        text_str(&t, espt_error_name(ev->code));
        if (ev->code == ESPT_ERR_OVERSIZE) {
            text_str(&t, ": len ");
            text_u32(&t, ev->len);
            text_str(&t, " above max_payload ");
            text_u32(&t, parser.max_payload);
        }
        return send_error(ev->seq, ev->code, t.s);
    }
    switch (ev->type) {
    case ESPT_INFO_REQ:
        return serve_info(ev->seq);
    case ESPT_PING_REQ:
        memcpy(TX_PAYLOAD, ev->payload, ev->len); /* len <= max_payload: the parser saw to it */
        return send_reply(ESPT_PONG, ev->seq, ev->len);
    case ESPT_INFER_REQ:
        return serve_infer(ev);
    case ESPT_INPUT_PART:
        return serve_input_part(ev);
    case ESPT_OUTPUT_REQ:
        return serve_output_req(ev);
    case ESPT_PROFILE_REQ:
        return serve_profile(ev);
    default:
        text_str(&t, "unknown type ");
        text_hex8(&t, ev->type);
        return send_error(ev->seq, ESPT_ERR_UNKNOWN_TYPE, t.s);
    }
}

/* Serve every event the buffered bytes hold, one reply each, in order. */
static int drain(void)
{
    espt_event_t ev;
    while (espt_parser_next(&parser, &ev)) {
        if (serve(&ev) < 0)
            return -1;
        espt_board_idle();
    }
    return 0;
}

static int feed(const uint8_t *data, size_t n)
{
    while (n > 0) {
        size_t k = espt_parser_push(&parser, data, n);
        if (k == 0) { /* cannot happen to a drained parser; never spin if it did */
            espt_parser_init(&parser, parser.max_payload);
            continue;
        }
        data += k;
        n -= k;
        if (drain() < 0)
            return -1;
    }
    return 0;
}

/* ---- the loop --------------------------------------------------------------- */

int espt_device_init(void)
{
    int rc = espt_board_init();
    if (rc != 0)
        return rc < 0 ? rc : -1;
    memset(&model, 0, sizeof model);
    memset(&piece_in, 0, sizeof piece_in);
    memset(&piece_out, 0, sizeof piece_out);
    rc = espt_engine_init(&model);
    check_model(&model, rc);
    espt_parser_init(&parser, (uint16_t)ESPT_MAX_PAYLOAD);
    quiet_since_ms = espt_board_millis();
    return send_reply(ESPT_READY, 0, espt_pack_ready(TX_PAYLOAD, model.status, model.model_crc32));
}

int espt_device_poll(uint32_t read_timeout_ms)
{
    espt_event_t ev;
    int rc = 0;
    int n = espt_board_read(rx_chunk, sizeof rx_chunk, read_timeout_ms);
    if (n < 0)
        return n;
    if (n > 0) {
        rc = feed(rx_chunk, (size_t)n > sizeof rx_chunk ? sizeof rx_chunk : (size_t)n);
        /* Quiet is measured from when the device listens again, not from when the
         * bytes came: serving may have taken longer than the frame time-out. */
        quiet_since_ms = espt_board_millis();
    } else if (espt_parser_pending(&parser) > 0
               && (uint32_t)(espt_board_millis() - quiet_since_ms) >= ESPT_FRAME_TIMEOUT_MS) {
        if (espt_parser_timeout(&parser, &ev)) {
            rc = serve(&ev);
            if (rc == 0)
                rc = drain();
        }
        quiet_since_ms = espt_board_millis();
    }
    espt_board_idle();
    return rc;
}

int espt_device_main(void)
{
    int rc = espt_device_init();
    while (rc >= 0)
        rc = espt_device_poll(ESPT_POLL_MS);
    return rc;
}
