/* The device loop (core/device.c) driven through the fake board and the test engine. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "crc32.h"
#include "device.h"
#include "device_step.h"
#include "fake_board.h"
#include "profile.h"
#include "protocol.h"
#include "reply_walk.h"
#include "test_engine.h"
#include "tests.h"

#define MAX_REPLIES 256

static reply_t replies[MAX_REPLIES];
static test_engine_config_t engine;
static uint8_t frame[ESPT_MAX_FRAME + 64];
static uint8_t scratch[2 * ESPT_MAX_FRAME];

/* What the device wrote, as frames; -1 (and a failed check) if it is not exactly a run
 * of well-formed frames. */
static long replies_sent(void)
{
    size_t n, bad;
    const uint8_t *out = fake_board_output(&n);
    long count = walk_replies(out, n, replies, MAX_REPLIES, &bad);
    if (count < 0)
        check_true(0, "device output is well-formed frames", __FILE__, __LINE__);
    return count;
}

/* Fresh board and engine (with the given config), device initialised, READY taken. */
static int start(const test_engine_config_t *cfg)
{
    fake_board_reset();
    test_engine_configure(cfg);
    if (!CHECK_EQ(espt_device_init(), 0))
        return 0;
    if (!CHECK_EQ(replies_sent(), 1) || !CHECK_EQ(replies[0].type, ESPT_READY))
        return 0;
    fake_board_take_output();
    return 1;
}

static int start_default(void)
{
    test_engine_defaults(&engine);
    return start(&engine);
}

static void send_frame(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len)
{
    size_t n = espt_frame_encode(frame, sizeof frame, type, seq, payload, len);
    CHECK(n > 0);
    fake_board_input(frame, n);
}

/* Poll until everything queued has been read. */
static void serve_all(void)
{
    int guard = 0;
    while (fake_board_remaining() > 0 && guard++ < 1000000)
        if (!CHECK_EQ(espt_device_poll(10), 0))
            return;
}

static int expect_error(const reply_t *r, uint16_t seq, uint8_t code, const char *text)
{
    char got[ESPT_ERROR_TEXT_MAX + 1];
    int ok = CHECK_EQ(r->type, ESPT_ERROR) && CHECK_EQ(r->seq, seq) && CHECK(r->len >= 2)
        && CHECK_EQ(r->payload[0], code) && CHECK_EQ(r->payload[1], 0);
    if (ok && text) {
        memcpy(got, r->payload + 2, r->len - 2u);
        got[r->len - 2] = '\0';
        ok = CHECK_STR(got, text);
    }
    return ok;
}

static uint32_t description_crc(void)
{
    return espt_crc32((const uint8_t *)TEST_ENGINE_DESCRIPTION, strlen(TEST_ENGINE_DESCRIPTION));
}

/* ---- start-up ------------------------------------------------------------------ */

static void test_ready_at_start(void)
{
    uint8_t payload[6] = {ESPT_PROTOCOL_VERSION, 0, 0, 0, 0, 0};
    size_t n, want;
    const uint8_t *out;
    fake_board_reset();
    test_engine_defaults(&engine);
    test_engine_configure(&engine);
    CHECK_EQ(espt_device_init(), 0);
    espt_put_u32(payload + 2, description_crc());
    want = espt_frame_encode(scratch, sizeof scratch, ESPT_READY, 0, payload, sizeof payload);
    out = fake_board_output(&n);
    CHECK_EQ(n, want);
    CHECK_MEM(out, scratch, want);
}

static void test_board_init_failure(void)
{
    fake_board_reset();
    fake_board_fail_init(1);
    test_engine_defaults(&engine);
    test_engine_configure(&engine);
    CHECK(espt_device_init() < 0);
    CHECK_EQ(fake_board_write_calls(), 0);
}

/* ---- INFO ---------------------------------------------------------------------- */

static void test_info_content(void)
{
    /* input int8 [1,4,4,1] scale 1/255 zp -128; output int8 [1,10] scale 1/256 zp -128 */
    static const uint8_t tensors[36] = {
        9, 4, 1, 0, 4, 0, 4, 0, 1, 0, 0x81, 0x80, 0x80, 0x3b, 0x80, 0xff, 0xff, 0xff,
        9, 2, 1, 0, 10, 0, 1, 0, 1, 0, 0x00, 0x00, 0x80, 0x3b, 0x80, 0xff, 0xff, 0xff};
    const char *version = ESPT_FIRMWARE_VERSION;
    size_t vlen = strlen(version);
    const uint8_t *p;
    if (!start_default())
        return;
    send_frame(ESPT_INFO_REQ, 7, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    CHECK_EQ(replies[0].type, ESPT_INFO_RSP);
    CHECK_EQ(replies[0].seq, 7);
    p = replies[0].payload;
    if (!CHECK_EQ(replies[0].len, 64 + 1 + strlen(FAKE_CHIP) + 1 + vlen))
        return;
    CHECK_EQ(p[0], 2);                     /* protocol version */
    CHECK_EQ(p[1], ESPT_STATUS_READY);
    CHECK_EQ(p[2], ESPT_ENGINE_AOT);
    CHECK_EQ(p[3], ESPT_INFO_FLAG_PIECES); /* tensors travel in pieces */
    CHECK_EQ(espt_get_u32(p + 4), description_crc());
    CHECK_EQ(espt_get_u32(p + 8), strlen(TEST_ENGINE_DESCRIPTION));
    CHECK_EQ(espt_get_u32(p + 12), TEST_ENGINE_ARENA_BYTES);
    CHECK_EQ(espt_get_u32(p + 16), TEST_ENGINE_ARENA_USED);
    CHECK_EQ(espt_get_u32(p + 20), FAKE_CPU_MHZ);
    CHECK_EQ(espt_get_u16(p + 24), ESPT_MAX_PAYLOAD);
    CHECK_EQ(espt_get_u16(p + 26), FAKE_RX_BUFFER_BYTES);
    CHECK_MEM(p + 28, tensors, sizeof tensors);
    CHECK_EQ(p[64], strlen(FAKE_CHIP));
    CHECK_MEM(p + 65, FAKE_CHIP, strlen(FAKE_CHIP));
    CHECK_EQ(p[65 + strlen(FAKE_CHIP)], vlen);
    CHECK_MEM(p + 66 + strlen(FAKE_CHIP), version, vlen);
}

/* An engine that is not ready says why: INFO ends with its detail, READY keeps its
 * six bytes. */
static void test_info_detail(void)
{
    static const char why[] = "RESHAPE (op 3) not registered";
    size_t at = 64 + 1 + strlen(FAKE_CHIP) + 1 + strlen(ESPT_FIRMWARE_VERSION);
    const reply_t *r;
    test_engine_defaults(&engine);
    engine.init_status = ESPT_STATUS_OP_NOT_REGISTERED;
    strcpy(engine.detail, why);
    fake_board_reset();
    test_engine_configure(&engine);
    CHECK_EQ(espt_device_init(), 0);
    if (!CHECK_EQ(replies_sent(), 1) || !CHECK_EQ(replies[0].len, ESPT_READY_BYTES))
        return;
    fake_board_take_output();
    send_frame(ESPT_INFO_REQ, 3, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    r = &replies[0];
    CHECK_EQ(r->type, ESPT_INFO_RSP);
    CHECK_EQ(r->payload[1], ESPT_STATUS_OP_NOT_REGISTERED);
    if (CHECK_EQ(r->len, at + 1 + strlen(why))) {
        CHECK_EQ(r->payload[at], strlen(why));
        CHECK_MEM(r->payload + at + 1, why, strlen(why));
    }
}

/* ---- INFER ---------------------------------------------------------------------- */

static void tick_on_invoke(void)
{
    fake_board_tick(1234, 56);
}

static void test_infer_reply_bytes(void)
{
    uint8_t input[16], payload[12 + 10];
    size_t i, n, want;
    const uint8_t *out;
    test_engine_defaults(&engine);
    engine.on_invoke = tick_on_invoke;
    if (!start(&engine))
        return;
    fake_board_tick(1000000, 1000000); /* counters well away from zero */
    for (i = 0; i < 16; i++)
        input[i] = (uint8_t)i;          /* sum 120 */
    send_frame(ESPT_INFER_REQ, 9, input, 16);
    memset(input, 0xFF, sizeof input); /* sum 4080 = 0xFF0: outputs wrap from 0xF0 */
    send_frame(ESPT_INFER_REQ, 10, input, 16);
    serve_all();

    /* cycles 1234 (u64), microseconds 56 (u32), then out[i] = sum + i */
    memset(payload, 0, sizeof payload);
    payload[0] = 0xD2;
    payload[1] = 0x04;
    payload[8] = 56;
    for (i = 0; i < 10; i++)
        payload[12 + i] = (uint8_t)(120 + i);
    want = espt_frame_encode(scratch, sizeof scratch, ESPT_INFER_RSP, 9, payload, sizeof payload);
    for (i = 0; i < 10; i++)
        payload[12 + i] = (uint8_t)(0xF0 + i);
    want += espt_frame_encode(scratch + want, sizeof scratch - want, ESPT_INFER_RSP, 10, payload,
                              sizeof payload);
    out = fake_board_output(&n);
    CHECK_EQ(n, want);
    CHECK_MEM(out, scratch, want);
    CHECK_EQ(test_engine_invocations(), 2);
}

static void test_infer_bad_length(void)
{
    uint8_t input[17] = {0};
    if (!start_default())
        return;
    send_frame(ESPT_INFER_REQ, 21, input, 15);
    send_frame(ESPT_INFER_REQ, 22, input, 17);
    send_frame(ESPT_INFER_REQ, 23, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 3))
        return;
    expect_error(&replies[0], 21, ESPT_ERR_BAD_LENGTH, "INFER_REQ of 15 bytes, input takes 16");
    expect_error(&replies[1], 22, ESPT_ERR_BAD_LENGTH, "INFER_REQ of 17 bytes, input takes 16");
    expect_error(&replies[2], 23, ESPT_ERR_BAD_LENGTH, "INFER_REQ of 0 bytes, input takes 16");
    CHECK_EQ(test_engine_invocations(), 0);
}

static void test_not_ready(void)
{
    uint8_t input[16] = {0};
    fake_board_reset();
    test_engine_defaults(&engine);
    engine.init_status = ESPT_STATUS_ARENA_TOO_SMALL;
    test_engine_configure(&engine);
    CHECK_EQ(espt_device_init(), 0);
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    CHECK_EQ(replies[0].type, ESPT_READY);
    CHECK_EQ(replies[0].payload[1], ESPT_STATUS_ARENA_TOO_SMALL);
    fake_board_take_output();
    send_frame(ESPT_INFO_REQ, 1, NULL, 0);
    send_frame(ESPT_INFER_REQ, 2, input, 16);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 2))
        return;
    CHECK_EQ(replies[0].type, ESPT_INFO_RSP);
    CHECK_EQ(replies[0].payload[1], ESPT_STATUS_ARENA_TOO_SMALL);
    CHECK_EQ(espt_get_u32(replies[0].payload + 16), 0); /* arena used */
    expect_error(&replies[1], 2, ESPT_ERR_NOT_READY, "not ready: arena too small");
    CHECK_EQ(test_engine_invocations(), 0);
}

static void test_invoke_failed(void)
{
    uint8_t input[16] = {0};
    test_engine_defaults(&engine);
    engine.fail_invoke = 1;
    if (!start(&engine))
        return;
    send_frame(ESPT_INFER_REQ, 31, input, 16);
    serve_all();
    if (CHECK_EQ(replies_sent(), 1))
        expect_error(&replies[0], 31, ESPT_ERR_INVOKE_FAILED, "invoke failed");

    test_engine_defaults(&engine);
    engine.fail_get_output = 1;
    if (!start(&engine))
        return;
    send_frame(ESPT_INFER_REQ, 32, input, 16);
    serve_all();
    if (CHECK_EQ(replies_sent(), 1))
        expect_error(&replies[0], 32, ESPT_ERR_INVOKE_FAILED, "get_output failed");
}

/* Tensors a frame cannot carry are served (in pieces: test_pieces.c), not refused; the
 * largest that fit one frame still travel whole, an output one byte larger comes without
 * its bytes (the host asks for them). */
static void test_tensor_size_limits(void)
{
    static uint8_t input[ESPT_MAX_PAYLOAD];
    size_t i;
    uint8_t want[ESPT_MAX_PAYLOAD];
    uint16_t out_max = (uint16_t)(ESPT_MAX_PAYLOAD - ESPT_INFER_HEAD_BYTES);

    test_engine_defaults(&engine);
    engine.input = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, ESPT_MAX_PAYLOAD + 1, 1, 1, 1.0f, 0);
    if (!start(&engine))
        return;
    send_frame(ESPT_INFO_REQ, 1, NULL, 0);
    serve_all();
    if (CHECK_EQ(replies_sent(), 1))
        CHECK_EQ(replies[0].payload[1], ESPT_STATUS_READY);

    test_engine_defaults(&engine);
    engine.output = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, (uint16_t)(out_max + 1), 1, 1, 1.0f, 0);
    if (!start(&engine))
        return;
    send_frame(ESPT_INFER_REQ, 2, input, 16);
    serve_all();
    if (CHECK_EQ(replies_sent(), 1)) {
        CHECK_EQ(replies[0].type, ESPT_INFER_RSP);
        CHECK_EQ(replies[0].len, ESPT_INFER_HEAD_BYTES);
    }

    /* the limits themselves: input of max_payload bytes, a reply of max_payload bytes */
    test_engine_defaults(&engine);
    engine.input = test_engine_tensor(ESPT_DTYPE_INT8, 1, ESPT_MAX_PAYLOAD, 1, 1, 1, 1.0f, 0);
    engine.output = test_engine_tensor(ESPT_DTYPE_INT8, 1, out_max, 1, 1, 1, 1.0f, 0);
    if (!start(&engine))
        return;
    for (i = 0; i < sizeof input; i++)
        input[i] = (uint8_t)(i * 7);
    send_frame(ESPT_INFER_REQ, 3, input, sizeof input);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    CHECK_EQ(replies[0].type, ESPT_INFER_RSP);
    CHECK_EQ(replies[0].len, ESPT_MAX_PAYLOAD);
    test_engine_expected(input, sizeof input, want, out_max);
    CHECK_MEM(replies[0].payload + ESPT_INFER_HEAD_BYTES, want, out_max);
}

static void test_unsound_tensor_info(void)
{
    test_engine_defaults(&engine);
    engine.input.rank = 0;     /* the host cannot unpack rank 0 */
    engine.output.bytes = 11;  /* shape says 10 */
    if (!start(&engine))
        return;
    send_frame(ESPT_INFO_REQ, 1, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    CHECK_EQ(replies[0].payload[1], ESPT_STATUS_MODEL_INVALID);
    CHECK_EQ(replies[0].payload[28 + 1], 1);  /* input rank made packable */
    CHECK_EQ(espt_get_u32(replies[0].payload + 16), 0);
}

/* ---- other requests ----------------------------------------------------------------- */

static void test_ping_echo(void)
{
    static uint8_t payload[ESPT_MAX_PAYLOAD];
    size_t i;
    for (i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ (i >> 8));
    if (!start_default())
        return;
    send_frame(ESPT_PING_REQ, 40, payload, 0);
    send_frame(ESPT_PING_REQ, 41, payload, sizeof payload);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 2))
        return;
    CHECK_EQ(replies[0].type, ESPT_PONG);
    CHECK_EQ(replies[0].seq, 40);
    CHECK_EQ(replies[0].len, 0);
    CHECK_EQ(replies[1].type, ESPT_PONG);
    CHECK_EQ(replies[1].seq, 41);
    CHECK_EQ(replies[1].len, sizeof payload);
    CHECK_MEM(replies[1].payload, payload, sizeof payload);
}

static void test_unknown_type(void)
{
    if (!start_default())
        return;
    send_frame(0x42, 50, (const uint8_t *)"x", 1);
    send_frame(ESPT_INFO_RSP, 51, NULL, 0); /* a device -> host type */
    serve_all();
    if (!CHECK_EQ(replies_sent(), 2))
        return;
    expect_error(&replies[0], 50, ESPT_ERR_UNKNOWN_TYPE, "unknown type 0x42");
    expect_error(&replies[1], 51, ESPT_ERR_UNKNOWN_TYPE, "unknown type 0x81");
}

/* ---- damaged streams -------------------------------------------------------------- */

static void test_oversize(void)
{
    uint8_t header[7 + 64];
    char text[ESPT_ERROR_TEXT_MAX + 1];
    memset(header, 0, sizeof header);
    header[0] = 0xA5;
    header[1] = 0x5A;
    header[2] = ESPT_PING_REQ;
    espt_put_u16(header + 3, 60);
    espt_put_u16(header + 5, ESPT_MAX_PAYLOAD + 1);
    if (!start_default())
        return;
    fake_board_input(header, sizeof header);
    send_frame(ESPT_INFO_REQ, 61, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 2))
        return;
    snprintf(text, sizeof text, "oversize: len %u above max_payload %u", ESPT_MAX_PAYLOAD + 1,
             ESPT_MAX_PAYLOAD);
    expect_error(&replies[0], 60, ESPT_ERR_OVERSIZE, text);
    CHECK_EQ(replies[1].type, ESPT_INFO_RSP);
    CHECK_EQ(replies[1].seq, 61);
}

static void test_corrupt_crc(void)
{
    size_t n;
    if (!start_default())
        return;
    n = espt_frame_encode(frame, sizeof frame, ESPT_PING_REQ, 70, (const uint8_t *)"hello", 5);
    frame[n - 1] ^= 0x01;
    fake_board_input(frame, n);
    n = espt_frame_encode(frame, sizeof frame, ESPT_PING_REQ, 71, (const uint8_t *)"hello", 5);
    frame[9] ^= 0x40; /* payload byte */
    fake_board_input(frame, n);
    send_frame(ESPT_INFO_REQ, 72, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 3))
        return;
    expect_error(&replies[0], 70, ESPT_ERR_CRC, "crc");
    expect_error(&replies[1], 71, ESPT_ERR_CRC, "crc");
    CHECK_EQ(replies[2].type, ESPT_INFO_RSP);
    CHECK_EQ(replies[2].seq, 72);
}

/* A partial frame is dropped once the link has been quiet for ESPT_FRAME_TIMEOUT_MS,
 * not before, measured on the board's millisecond clock. */
static void test_truncated_timeout(void)
{
    uint8_t input[16] = {0};
    size_t n, polls;
    if (!start_default())
        return;
    n = espt_frame_encode(frame, sizeof frame, ESPT_INFER_REQ, 11, input, 16);
    fake_board_input(frame, n - 6);
    serve_all();
    /* each empty poll waits 10 ms on the fake clock */
    for (polls = 1; polls < ESPT_FRAME_TIMEOUT_MS / 10; polls++)
        CHECK_EQ(espt_device_poll(10), 0);
    fake_board_output(&n);
    CHECK_EQ(n, 0);
    CHECK_EQ(espt_device_poll(10), 0);
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    expect_error(&replies[0], 11, ESPT_ERR_TRUNCATED, "truncated");
    fake_board_take_output();
    /* the link works again */
    send_frame(ESPT_INFO_REQ, 12, NULL, 0);
    serve_all();
    if (CHECK_EQ(replies_sent(), 1))
        CHECK_EQ(replies[0].seq, 12);
}

/* A partial header (seq unknown) nested inside a partial frame: one truncated error per
 * quiet period, each dropping one byte and resynchronising. */
static void test_timeout_rearms(void)
{
    static const uint8_t bytes[] = {0xA5, 0x5A, 0x03, 0x01, 0x00, 0x08, 0x00,
                                    0xA5, 0x5A, 0x03, 0x02};
    int polls;
    if (!start_default())
        return;
    fake_board_input(bytes, sizeof bytes);
    serve_all();
    for (polls = 0; polls < 2 * ESPT_FRAME_TIMEOUT_MS / 10 - 1; polls++)
        CHECK_EQ(espt_device_poll(10), 0);
    if (!CHECK_EQ(replies_sent(), 1))
        return;
    expect_error(&replies[0], 1, ESPT_ERR_TRUNCATED, NULL);
    CHECK_EQ(espt_device_poll(10), 0);
    if (!CHECK_EQ(replies_sent(), 2))
        return;
    expect_error(&replies[1], ESPT_SEQ_UNKNOWN, ESPT_ERR_TRUNCATED, NULL);
    for (polls = 0; polls < 100; polls++)
        CHECK_EQ(espt_device_poll(10), 0);
    CHECK_EQ(replies_sent(), 2);
}

static void test_boot_noise(void)
{
    static const char boot[] =
        "ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
        "I (29) boot: ESP-IDF v5.1 2nd stage bootloader\r\n\xa5\xa5\x00\xa5";
    if (!start_default())
        return;
    fake_board_input((const uint8_t *)boot, sizeof boot - 1);
    send_frame(ESPT_INFO_REQ, 80, NULL, 0);
    serve_all();
    if (CHECK_EQ(replies_sent(), 1)) {
        CHECK_EQ(replies[0].type, ESPT_INFO_RSP);
        CHECK_EQ(replies[0].seq, 80);
    }
}

static void test_byte_by_byte(void)
{
    uint8_t input[16];
    size_t i, polls = 0;
    for (i = 0; i < 16; i++)
        input[i] = (uint8_t)(3 * i);
    if (!start_default())
        return;
    fake_board_set_read_max(1);
    send_frame(ESPT_INFER_REQ, 90, input, 16);
    send_frame(ESPT_PING_REQ, 91, (const uint8_t *)"abc", 3);
    while (fake_board_remaining() > 0 && polls < 1000) {
        CHECK_EQ(espt_device_poll(10), 0);
        polls++;
    }
    CHECK_EQ(polls, (11 + 16) + (11 + 3));
    if (!CHECK_EQ(replies_sent(), 2))
        return;
    CHECK_EQ(replies[0].type, ESPT_INFER_RSP);
    CHECK_EQ(replies[0].seq, 90);
    CHECK_EQ(replies[0].payload[12], (uint8_t)(3 * 120));
    CHECK_EQ(replies[1].type, ESPT_PONG);
    CHECK_EQ(replies[1].seq, 91);
    CHECK_MEM(replies[1].payload, "abc", 3);
}

/* Many requests in one chunk (more bytes than the parser holds): one reply each, in
 * order, with its seq. */
static void test_pipelined(void)
{
    static uint8_t ping[3000];
    uint8_t input[16];
    const int count = 40;
    int i, got;
    unsigned long idle_before;
    memset(ping, 0x5A, sizeof ping);
    memset(input, 1, sizeof input);
    if (!start_default())
        return;
    fake_board_set_read_max(0);
    for (i = 0; i < count; i++) {
        uint16_t seq = (uint16_t)(1000 + i);
        switch (i % 5) {
        case 0: send_frame(ESPT_INFO_REQ, seq, NULL, 0); break;
        case 1: send_frame(ESPT_PING_REQ, seq, ping, (size_t)(i * 70 % ESPT_MAX_PAYLOAD)); break;
        case 2: send_frame(ESPT_INFER_REQ, seq, input, 16); break;
        case 3: send_frame(ESPT_INFER_REQ, seq, input, 3); break;
        default: send_frame(0x7F, seq, NULL, 0); break;
        }
    }
    idle_before = fake_board_idle_calls();
    serve_all();
    got = replies_sent();
    if (!CHECK_EQ(got, count))
        return;
    for (i = 0; i < count; i++) {
        static const uint8_t types[5] = {ESPT_INFO_RSP, ESPT_PONG, ESPT_INFER_RSP, ESPT_ERROR,
                                         ESPT_ERROR};
        CHECK_EQ(replies[i].seq, 1000 + i);
        CHECK_EQ(replies[i].type, types[i % 5]);
        if (i % 5 == 1)
            CHECK_EQ(replies[i].len, i * 70 % ESPT_MAX_PAYLOAD);
        if (i % 5 == 2)
            CHECK_EQ(replies[i].payload[12], 16);
    }
    /* idle between requests, not only between reads */
    CHECK(fake_board_idle_calls() - idle_before >= (unsigned long)count);
    CHECK_EQ(test_engine_invocations(), count / 5);
}

/* ---- the link ----------------------------------------------------------------------- */

static void test_main_returns_on_link_close(void)
{
    uint8_t frames[64];
    size_t n;
    fake_board_reset();
    test_engine_defaults(&engine);
    test_engine_configure(&engine);
    n = espt_frame_encode(frames, sizeof frames, ESPT_INFO_REQ, 5, NULL, 0);
    n += espt_frame_encode(frames + n, sizeof frames - n, ESPT_PING_REQ, 6,
                           (const uint8_t *)"hi", 2);
    fake_board_input(frames, n);
    fake_board_close_link();
    CHECK(espt_device_main() < 0);
    if (!CHECK_EQ(replies_sent(), 3))
        return;
    CHECK_EQ(replies[0].type, ESPT_READY);
    CHECK_EQ(replies[0].seq, 0);
    CHECK_EQ(replies[1].type, ESPT_INFO_RSP);
    CHECK_EQ(replies[2].type, ESPT_PONG);
}

static void test_write_failure_is_fatal(void)
{
    if (!start_default())
        return;
    fake_board_fail_writes_after(0);
    send_frame(ESPT_INFO_REQ, 1, NULL, 0);
    CHECK(espt_device_poll(10) < 0);
}

/* ---- PROFILE -------------------------------------------------------------------- */

static void send_profile_req(uint16_t seq, uint16_t first)
{
    uint8_t p[ESPT_PROFILE_REQ_BYTES];
    espt_put_u16(p, first);
    send_frame(ESPT_PROFILE_REQ, seq, p, sizeof p);
}

/* One PROFILE_RSP: its head, then each record byte-equal to the test engine's step. */
static void expect_profile(const reply_t *r, uint16_t seq, uint8_t unit, uint8_t state,
                           uint16_t total, uint16_t first, uint16_t count)
{
    uint8_t want[ESPT_PROFILE_RECORD_BYTES];
    uint16_t k;
    if (!CHECK_EQ(r->type, ESPT_PROFILE_RSP) || !CHECK_EQ(r->seq, seq)
        || !CHECK_EQ(r->len, ESPT_PROFILE_HEAD_BYTES + (size_t)count * ESPT_PROFILE_RECORD_BYTES))
        return;
    CHECK_EQ(r->payload[0], unit);
    CHECK_EQ(r->payload[1], state);
    CHECK_EQ(espt_get_u16(r->payload + 2), total);
    CHECK_EQ(espt_get_u16(r->payload + 4), first);
    CHECK_EQ(espt_get_u16(r->payload + 6), count);
    for (k = 0; k < count; k++) {
        espt_profile_step_t rec;
        const uint8_t *got = r->payload + ESPT_PROFILE_HEAD_BYTES + (size_t)k * ESPT_PROFILE_RECORD_BYTES;
        test_engine_profile_expected((uint32_t)first + k, &rec);
        espt_pack_profile_step(want, &rec);
        if (!CHECK_MEM(got, want, sizeof want))
            return;
    }
}

static void infer_once(uint16_t seq)
{
    uint8_t input[16] = {0};
    send_frame(ESPT_INFER_REQ, seq, input, sizeof input);
}

/* Before any inference: nothing recorded; after one: its steps, with the board's unit. */
static void test_profile_steps(void)
{
    if (!start_default())
        return;
    fake_board_set_counter_unit(ESPT_COUNTER_INSTRUCTIONS);
    send_profile_req(1, 0);
    infer_once(2);
    send_profile_req(3, 0);
    send_profile_req(4, 2);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 4))
        return;
    expect_profile(&replies[0], 1, ESPT_COUNTER_INSTRUCTIONS, ESPT_PROFILE_EMPTY, 0, 0, 0);
    CHECK_EQ(replies[1].type, ESPT_INFER_RSP);
    expect_profile(&replies[2], 3, ESPT_COUNTER_INSTRUCTIONS, ESPT_PROFILE_RECORDED, 3, 0, 3);
    expect_profile(&replies[3], 4, ESPT_COUNTER_INSTRUCTIONS, ESPT_PROFILE_RECORDED, 3, 2, 1);
    /* the fused step (1) names both ops; a single one pads with 0xFFFF */
    CHECK_EQ(replies[2].payload[ESPT_PROFILE_HEAD_BYTES + ESPT_PROFILE_RECORD_BYTES], 2);
    CHECK_EQ(espt_get_u16(replies[2].payload + ESPT_PROFILE_HEAD_BYTES + 4), 0xFFFFu);
}

/* More steps than one reply holds: pages of ESPT_PROFILE_PER_REPLY records, and a page
 * past the end is empty, not an error. */
static void test_profile_pages(void)
{
    const uint16_t per = (uint16_t)ESPT_PROFILE_PER_REPLY(ESPT_MAX_PAYLOAD);
    test_engine_defaults(&engine);
    engine.profile_steps = 2 * per + 5;
    if (!start(&engine))
        return;
    infer_once(1);
    send_profile_req(2, 0);
    send_profile_req(3, per);
    send_profile_req(4, (uint16_t)(2 * per));
    send_profile_req(5, (uint16_t)(2 * per + 5));
    send_profile_req(6, 0xFFFFu);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 6))
        return;
    expect_profile(&replies[1], 2, ESPT_COUNTER_CYCLES, ESPT_PROFILE_RECORDED, (uint16_t)(2 * per + 5), 0, per);
    expect_profile(&replies[2], 3, ESPT_COUNTER_CYCLES, ESPT_PROFILE_RECORDED, (uint16_t)(2 * per + 5), per, per);
    expect_profile(&replies[3], 4, ESPT_COUNTER_CYCLES, ESPT_PROFILE_RECORDED, (uint16_t)(2 * per + 5),
                   (uint16_t)(2 * per), 5);
    expect_profile(&replies[4], 5, ESPT_COUNTER_CYCLES, ESPT_PROFILE_RECORDED, (uint16_t)(2 * per + 5),
                   (uint16_t)(2 * per + 5), 0);
    expect_profile(&replies[5], 6, ESPT_COUNTER_CYCLES, ESPT_PROFILE_RECORDED, (uint16_t)(2 * per + 5),
                   0xFFFFu, 0);
    CHECK(replies[1].len <= ESPT_MAX_PAYLOAD);
}

static void test_profile_off_and_bad_length(void)
{
    uint8_t three[3] = {0, 0, 0};
    test_engine_defaults(&engine);
    engine.profile_off = 1;
    if (!start(&engine))
        return;
    fake_board_set_counter_unit(ESPT_COUNTER_NANOSECONDS);
    infer_once(1);
    send_profile_req(2, 0);
    send_frame(ESPT_PROFILE_REQ, 3, three, sizeof three);
    send_frame(ESPT_PROFILE_REQ, 4, NULL, 0);
    serve_all();
    if (!CHECK_EQ(replies_sent(), 4))
        return;
    expect_profile(&replies[1], 2, ESPT_COUNTER_NANOSECONDS, ESPT_PROFILE_OFF, 0, 0, 0);
    expect_error(&replies[2], 3, ESPT_ERR_BAD_LENGTH, "PROFILE_REQ of 3 bytes, takes 2");
    expect_error(&replies[3], 4, ESPT_ERR_BAD_LENGTH, "PROFILE_REQ of 0 bytes, takes 2");
}

void test_device(void)
{
    RUN(test_ready_at_start);
    RUN(test_board_init_failure);
    RUN(test_info_content);
    RUN(test_info_detail);
    RUN(test_infer_reply_bytes);
    RUN(test_infer_bad_length);
    RUN(test_not_ready);
    RUN(test_invoke_failed);
    RUN(test_tensor_size_limits);
    RUN(test_unsound_tensor_info);
    RUN(test_ping_echo);
    RUN(test_unknown_type);
    RUN(test_oversize);
    RUN(test_corrupt_crc);
    RUN(test_truncated_timeout);
    RUN(test_timeout_rearms);
    RUN(test_boot_noise);
    RUN(test_byte_by_byte);
    RUN(test_pipelined);
    RUN(test_main_returns_on_link_close);
    RUN(test_write_failure_is_fatal);
    RUN(test_profile_steps);
    RUN(test_profile_pages);
    RUN(test_profile_off_and_bad_length);
}
