/* libFuzzer target: arbitrary bytes and quiet gaps through the whole device loop
 * (parser, request handling, replies) on the fake board with the test engine.
 *
 * Input: byte 0 configures the run, byte 1 picks how the rest becomes the wire.
 *   byte 0, bits 0-1  engine init status (3 means 0: ready)
 *           bit 2     invoke fails       bit 3   get_output fails
 *           bits 4-6  bytes per read: 0 (as many as queued), 1, 2, 3, 7, 16, 64, 255
 *           bit 7     set_input fails
 *   byte 1, bits 1-2  the engine's profile: 3 steps, built without profiling, 0 steps,
 *           or more steps than one reply holds (PROFILE_REQ pages)
 *   byte 1, bit 0 clear: raw wire. 0xFE 0xFE is a literal 0xFE; 0xFE then any other
 *           byte is a quiet gap as long as the frame time-out (the vectors' "T").
 *   byte 1, bit 0 set: records, so the fuzzer reaches well-formed frames it could not
 *           find by chance (their CRC). Each record is an op byte, op & 3:
 *             0  frame: type, seq (u16), len (u16, taken mod ESPT_MAX_PAYLOAD + 17 so
 *                oversize is reachable), then up to len payload bytes (zeros after
 *                the input ends)
 *             1  the same frame with its last CRC byte flipped
 *             2  raw bytes: n (u8), then n bytes
 *             3  a quiet gap
 *
 * Invariants checked (abort on violation, so libFuzzer keeps the input):
 *   - the device never fails on the fake link, never overruns a buffer (ASan/UBSan);
 *   - what it writes is exactly a run of well-formed, CRC-valid frames;
 *   - READY comes first, then exactly one reply per parser event, in order, with its
 *     seq; each reply is the one docs/protocol.md prescribes, byte for byte where the
 *     content is known (PONG echo, INFER outputs, INFO size and status, PROFILE
 *     records);
 *   - pieces (INPUT_PART, OUTPUT_REQ) follow docs/protocol.md's rules, replayed here on
 *     a model of the transfer state with its own copy of the input: every INPUT_ACK's
 *     `have`, every output (whole or in pieces) equal to the engine's on that copy.
 * The parser's own decisions are pinned by the vectors in the unit tests; here a
 * second parser instance replays the link to say which events the device saw. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "device_step.h"
#include "fake_board.h"
#include "profile.h"
#include "protocol.h"
#include "reply_walk.h"
#include "test_engine.h"

#define MAX_REPLIES 65536
#define LINK_CAP (1u << 20)
#define GAPS_CAP 4096

/* The link as decoded from the input: bytes, and positions where it goes quiet. */
static struct {
    uint8_t bytes[LINK_CAP];
    size_t n;
    size_t gaps[GAPS_CAP];
    size_t n_gaps;
} wire;

static reply_t replies[MAX_REPLIES];
static espt_parser_t reference;
static test_engine_config_t cfg;
static uint8_t frame[ESPT_MAX_FRAME + 32];

/* The transfer state as docs/protocol.md defines it, and the input it must have built. */
static struct {
    int open, out_valid;
    uint16_t tag, out_tag;
    uint32_t have;
    uint8_t input[TEST_ENGINE_MAX_BYTES];
    uint8_t output[TEST_ENGINE_MAX_BYTES];
} model;

#define REQUIRE(cond)                                                                        \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_device: invariant failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static unsigned long invokes; /* inferences the replies so far imply the engine ran */

static void configure(uint8_t c, uint8_t wire_mode)
{
    static const long profile_steps[4] = {3, 3, 0, 2 * ESPT_PROFILE_PER_REPLY(ESPT_MAX_PAYLOAD) + 5};
    static const size_t read_sizes[8] = {0, 1, 2, 3, 7, 16, 64, 255};
    test_engine_defaults(&cfg);
    cfg.init_status = (uint8_t)((c & 3u) == 3u ? 0u : (c & 3u));
    cfg.fail_invoke = (c >> 2) & 1;
    cfg.fail_get_output = (c >> 3) & 1;
    cfg.fail_set_input = (c >> 7) & 1;
    cfg.profile_off = ((wire_mode >> 1) & 3u) == 1u;
    cfg.profile_steps = profile_steps[(wire_mode >> 1) & 3u];
    invokes = 0;
    fake_board_reset();
    fake_board_set_read_max(read_sizes[(c >> 4) & 7u]);
    test_engine_configure(&cfg);
}

static void wire_bytes(const uint8_t *b, size_t n)
{
    if (n > LINK_CAP - wire.n)
        n = LINK_CAP - wire.n;
    if (n > 0)
        memcpy(wire.bytes + wire.n, b, n);
    wire.n += n;
}

static void wire_gap(void)
{
    if (wire.n_gaps < GAPS_CAP)
        wire.gaps[wire.n_gaps++] = wire.n;
}

static void decode_raw(const uint8_t *d, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && d[i] != 0xFE)
            i++;
        wire_bytes(d + start, i - start);
        if (i + 1 < n) {
            if (d[i + 1] == 0xFE)
                wire_bytes(d + i, 1);
            else
                wire_gap();
        }
        i += 2;
    }
}

static void decode_records(const uint8_t *d, size_t n)
{
    static uint8_t payload[ESPT_MAX_PAYLOAD + 17];
    size_t i = 0;
    while (i < n) {
        uint8_t op = d[i++];
        if ((op & 3u) <= 1u) {
            uint8_t type;
            uint16_t seq;
            size_t len, take, size;
            if (n - i < 5)
                return;
            type = d[i];
            seq = espt_get_u16(d + i + 1);
            len = espt_get_u16(d + i + 3) % (ESPT_MAX_PAYLOAD + 17u);
            i += 5;
            take = len < n - i ? len : n - i;
            memset(payload, 0, len);
            if (take > 0)
                memcpy(payload, d + i, take);
            i += take;
            size = espt_frame_encode(frame, sizeof frame, type, seq, payload, len);
            REQUIRE(size == len + ESPT_FRAME_OVERHEAD);
            if (op & 1u)
                frame[size - 1] ^= 0xFF;
            wire_bytes(frame, size);
        } else if ((op & 3u) == 2u) {
            size_t k;
            if (i >= n)
                return;
            k = d[i++];
            if (k > n - i)
                k = n - i;
            wire_bytes(d + i, k);
            i += k;
        } else {
            wire_gap();
        }
    }
}

/* Hand the link to the fake board, gaps in place. */
static void queue_link(void)
{
    size_t at = 0, g;
    for (g = 0; g < wire.n_gaps; g++) {
        fake_board_input(wire.bytes + at, wire.gaps[g] - at);
        fake_board_gap();
        at = wire.gaps[g];
    }
    fake_board_input(wire.bytes + at, wire.n - at);
}

static void require_ack(const reply_t *r, uint16_t tag, uint32_t have)
{
    REQUIRE(r->type == ESPT_INPUT_ACK && r->len == ESPT_PIECE_HEAD_BYTES);
    REQUIRE(espt_get_u16(r->payload) == tag && espt_get_u32(r->payload + 2) == have);
}

static void require_error(const reply_t *r, uint8_t code)
{
    REQUIRE(r->type == ESPT_ERROR && r->len >= 2 && r->payload[0] == code);
}

/* The input is whole (model.input): the reply is the engine's output or invoke failed. */
static void require_inference(const espt_event_t *ev, const reply_t *r)
{
    int fits = cfg.output.bytes <= ESPT_MAX_PAYLOAD - ESPT_INFER_HEAD_BYTES;
    invokes++; /* set_input succeeded: the engine ran, whatever came of it */
    model.open = 0;
    model.out_valid = 0;
    if (cfg.fail_invoke || (fits && cfg.fail_get_output)) {
        require_error(r, ESPT_ERR_INVOKE_FAILED);
        return;
    }
    test_engine_expected(model.input, cfg.input.bytes, model.output, cfg.output.bytes);
    REQUIRE(r->type == ESPT_INFER_RSP);
    REQUIRE(r->len == ESPT_INFER_HEAD_BYTES + (fits ? cfg.output.bytes : 0u));
    REQUIRE(!fits || memcmp(r->payload + ESPT_INFER_HEAD_BYTES, model.output, cfg.output.bytes) == 0);
    model.out_valid = 1;
    model.out_tag = ev->seq;
}

static void check_input_part(const espt_event_t *ev, const reply_t *r)
{
    uint16_t tag;
    uint32_t offset, n;
    if (ev->len <= ESPT_PIECE_HEAD_BYTES) {
        require_error(r, ESPT_ERR_BAD_LENGTH);
        return;
    }
    tag = espt_get_u16(ev->payload);
    offset = espt_get_u32(ev->payload + 2);
    n = (uint32_t)ev->len - ESPT_PIECE_HEAD_BYTES;
    if (offset > cfg.input.bytes || n > cfg.input.bytes - offset) {
        require_error(r, ESPT_ERR_BAD_LENGTH);
        return;
    }
    if (offset == 0) {
        model.open = 1;
        model.tag = tag;
        model.have = 0;
    }
    if (!model.open || model.tag != tag) {
        require_ack(r, tag, 0);
        return;
    }
    if (offset > model.have || offset + n <= model.have) {
        require_ack(r, tag, model.have);
        return;
    }
    model.out_valid = 0;
    if (cfg.fail_set_input) {
        model.open = 0;
        require_error(r, ESPT_ERR_INVOKE_FAILED);
        return;
    }
    memcpy(model.input + model.have, ev->payload + ESPT_PIECE_HEAD_BYTES + (model.have - offset),
           offset + n - model.have);
    model.have = offset + n;
    if (model.have < cfg.input.bytes)
        require_ack(r, tag, model.have);
    else
        require_inference(ev, r);
}

static void check_output_req(const espt_event_t *ev, const reply_t *r)
{
    uint16_t tag, n;
    uint32_t offset;
    if (ev->len != ESPT_OUTPUT_REQ_BYTES) {
        require_error(r, ESPT_ERR_BAD_LENGTH);
        return;
    }
    tag = espt_get_u16(ev->payload);
    offset = espt_get_u32(ev->payload + 2);
    n = espt_get_u16(ev->payload + 6);
    if (!model.out_valid || model.out_tag != tag) {
        require_error(r, ESPT_ERR_NO_OUTPUT);
        return;
    }
    if (n == 0 || n > ESPT_MAX_PAYLOAD - ESPT_PIECE_HEAD_BYTES || offset > cfg.output.bytes
        || n > cfg.output.bytes - offset) {
        require_error(r, ESPT_ERR_BAD_LENGTH);
        return;
    }
    if (cfg.fail_get_output) {
        require_error(r, ESPT_ERR_INVOKE_FAILED);
        return;
    }
    REQUIRE(r->type == ESPT_OUTPUT_PART && r->len == ESPT_PIECE_HEAD_BYTES + n);
    REQUIRE(espt_get_u16(r->payload) == tag && espt_get_u32(r->payload + 2) == offset);
    REQUIRE(memcmp(r->payload + ESPT_PIECE_HEAD_BYTES, model.output + offset, n) == 0);
}

/* PROFILE_RSP for steps from `first`, after `invokes` inferences. */
static void check_profile(const espt_event_t *ev, const reply_t *r)
{
    long steps = cfg.profile_off ? -1 : invokes == 0 ? 0 : cfg.profile_steps;
    uint16_t first = espt_get_u16(ev->payload), count = 0;
    uint8_t want[ESPT_PROFILE_RECORD_BYTES];
    size_t k;
    REQUIRE(r->type == ESPT_PROFILE_RSP && r->len >= ESPT_PROFILE_HEAD_BYTES);
    REQUIRE(r->payload[0] == ESPT_COUNTER_CYCLES);
    REQUIRE(r->payload[1] == (steps < 0 ? ESPT_PROFILE_OFF : steps == 0 ? ESPT_PROFILE_EMPTY
                                                                     : ESPT_PROFILE_RECORDED));
    REQUIRE(espt_get_u16(r->payload + 2) == (steps > 0 ? steps : 0));
    REQUIRE(espt_get_u16(r->payload + 4) == first);
    if (steps > first) {
        long left = steps - first;
        count = (uint16_t)(left < (long)ESPT_PROFILE_PER_REPLY(ESPT_MAX_PAYLOAD)
                               ? left : (long)ESPT_PROFILE_PER_REPLY(ESPT_MAX_PAYLOAD));
    }
    REQUIRE(espt_get_u16(r->payload + 6) == count);
    REQUIRE(r->len == ESPT_PROFILE_HEAD_BYTES + (size_t)count * ESPT_PROFILE_RECORD_BYTES);
    for (k = 0; k < count; k++) {
        espt_profile_step_t rec;
        test_engine_profile_expected((uint32_t)(first + k), &rec);
        espt_pack_profile_step(want, &rec);
        REQUIRE(memcmp(r->payload + ESPT_PROFILE_HEAD_BYTES + k * ESPT_PROFILE_RECORD_BYTES,
                       want, sizeof want) == 0);
    }
}

/* The reply the device owes for one event of the reference parser. */
static void check_reply(const espt_event_t *ev, const reply_t *r)
{
    REQUIRE(r->seq == ev->seq);
    if (ev->kind == ESPT_EVENT_ERROR) {
        REQUIRE(r->type == ESPT_ERROR && r->len >= 2 && r->payload[0] == ev->code);
        return;
    }
    switch (ev->type) {
    case ESPT_INFO_REQ:
        REQUIRE(r->type == ESPT_INFO_RSP);
        REQUIRE(r->len == ESPT_INFO_FIXED_BYTES + 2 + strlen(FAKE_CHIP) + strlen(ESPT_FIRMWARE_VERSION));
        REQUIRE(r->payload[1] == cfg.init_status);
        REQUIRE(r->payload[3] == ESPT_INFO_FLAG_PIECES);
        break;
    case ESPT_PING_REQ:
        REQUIRE(r->type == ESPT_PONG && r->len == ev->len);
        REQUIRE(ev->len == 0 || memcmp(r->payload, ev->payload, ev->len) == 0);
        break;
    case ESPT_INFER_REQ:
    case ESPT_INPUT_PART:
    case ESPT_OUTPUT_REQ:
        if (cfg.init_status != ESPT_STATUS_READY) {
            require_error(r, ESPT_ERR_NOT_READY);
        } else if (ev->type == ESPT_INPUT_PART) {
            check_input_part(ev, r);
        } else if (ev->type == ESPT_OUTPUT_REQ) {
            check_output_req(ev, r);
        } else if (ev->len != cfg.input.bytes) {
            require_error(r, ESPT_ERR_BAD_LENGTH);
        } else {
            model.open = 0;
            model.out_valid = 0;
            if (cfg.fail_set_input) {
                require_error(r, ESPT_ERR_INVOKE_FAILED);
            } else {
                memcpy(model.input, ev->payload, ev->len);
                require_inference(ev, r);
            }
        }
        break;
    case ESPT_PROFILE_REQ:
        if (ev->len != ESPT_PROFILE_REQ_BYTES)
            REQUIRE(r->type == ESPT_ERROR && r->payload[0] == ESPT_ERR_BAD_LENGTH);
        else
            check_profile(ev, r);
        break;
    default:
        REQUIRE(r->type == ESPT_ERROR && r->payload[0] == ESPT_ERR_UNKNOWN_TYPE);
    }
}

/* Replay the link byte by byte through a second parser (the device got it in chunks)
 * and match its events to the replies after READY. */
static void check_replies(long count)
{
    espt_event_t ev;
    long k = 1;
    size_t i, g = 0;
    espt_parser_init(&reference, ESPT_MAX_PAYLOAD);
    memset(&model, 0, sizeof model);
    for (i = 0; i <= wire.n; i++) {
        for (; g < wire.n_gaps && wire.gaps[g] == i; g++) {
            if (espt_parser_timeout(&reference, &ev)) {
                REQUIRE(k < count);
                check_reply(&ev, &replies[k++]);
            }
            while (espt_parser_next(&reference, &ev)) {
                REQUIRE(k < count);
                check_reply(&ev, &replies[k++]);
            }
        }
        if (i == wire.n)
            break;
        REQUIRE(espt_parser_push(&reference, wire.bytes + i, 1) == 1);
        while (espt_parser_next(&reference, &ev)) {
            REQUIRE(k < count);
            check_reply(&ev, &replies[k++]);
        }
    }
    REQUIRE(k == count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t out_n, bad, items;
    const uint8_t *out;
    long count, polls = 0;

    if (size < 2)
        return 0;
    configure(data[0], data[1]);
    wire.n = wire.n_gaps = 0;
    if (data[1] & 1u)
        decode_records(data + 2, size - 2);
    else
        decode_raw(data + 2, size - 2);
    queue_link();
    items = wire.n + wire.n_gaps;

    REQUIRE(espt_device_init() == 0);
    while (fake_board_remaining() > 0) {
        REQUIRE(espt_device_poll(1) == 0);
        REQUIRE((size_t)++polls <= items); /* every poll takes a byte or a gap */
    }

    out = fake_board_output(&out_n);
    REQUIRE(!fake_board_output_overflowed());
    count = walk_replies(out, out_n, replies, MAX_REPLIES, &bad);
    if (count < 0)
        fprintf(stderr, "fuzz_device: malformed output at byte %zu of %zu\n", bad, out_n);
    REQUIRE(count >= 1);
    REQUIRE(replies[0].type == ESPT_READY && replies[0].seq == 0 && replies[0].len == 6);
    REQUIRE(replies[0].payload[1] == cfg.init_status);
    check_replies(count);
    return 0;
}
