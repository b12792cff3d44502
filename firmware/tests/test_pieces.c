/* Tensors in pieces (docs/protocol.md): the transfer vectors through the device loop, and
 * tensors far above one frame (256 KB in, a large output pulled in pieces). */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "device_step.h"
#include "fake_board.h"
#include "protocol.h"
#include "reply_walk.h"
#include "test_engine.h"
#include "tests.h"
#include "vectors.h"

#define MAX_REPLIES 128
#define BIG_BYTES (256u * 1024u)

static vectors_t vecs;
static reply_t replies[MAX_REPLIES];
static uint8_t frame[ESPT_MAX_FRAME + 64];
static uint8_t image[BIG_BYTES];
static uint8_t want[BIG_BYTES];
static uint8_t got[BIG_BYTES];

static int start(const test_engine_config_t *cfg)
{
    fake_board_reset();
    test_engine_configure(cfg);
    if (!CHECK_EQ(espt_device_init(), 0))
        return 0;
    fake_board_take_output();
    return 1;
}

/* Serve what is queued; the replies it made (-1 if not well-formed frames). */
static long serve_and_walk(void)
{
    size_t n, bad;
    const uint8_t *out;
    int guard = 0;
    long count;
    while (fake_board_remaining() > 0 && guard++ < 1000000)
        if (!CHECK_EQ(espt_device_poll(10), 0))
            return -1;
    out = fake_board_output(&n);
    count = walk_replies(out, n, replies, MAX_REPLIES, &bad);
    if (!CHECK(count >= 0))
        return -1;
    return count;
}

static void run_transfer(const transfer_vector_t *v)
{
    test_engine_config_t cfg;
    const char *cursor = v->steps;
    char expected[512], actual[512];
    size_t n;
    int rc, step = 0;
    test_engine_defaults(&cfg);
    if (!start(&cfg))
        return;
    while ((rc = transfer_next_step(&cursor, frame, sizeof frame, &n, expected, sizeof expected)) == 1) {
        step++;
        fake_board_take_output();
        fake_board_input(frame, n);
        if (!CHECK_EQ(serve_and_walk(), 1))
            return;
        if (!CHECK_EQ(format_reply(&replies[0], actual, sizeof actual), 0))
            return;
        if (strcmp(actual, expected) != 0) {
            char what[1200];
            snprintf(what, sizeof what, "transfer %s step %d: got %s", v->name, step, actual);
            check_true(0, what, __FILE__, __LINE__);
            return;
        }
    }
    CHECK_EQ(rc, 0);
    CHECK(step > 0);
}

static void test_transfer_vectors(void)
{
    size_t i;
    CHECK(vecs.n_transfers >= 10);
    for (i = 0; i < vecs.n_transfers; i++)
        run_transfer(&vecs.transfers[i]);
}

static void send_piece(uint16_t seq, uint16_t tag, uint32_t offset, const uint8_t *data, size_t n)
{
    static uint8_t payload[ESPT_MAX_PAYLOAD];
    size_t len;
    espt_put_u16(payload, tag);
    espt_put_u32(payload + 2, offset);
    memcpy(payload + ESPT_PIECE_HEAD_BYTES, data, n);
    len = espt_frame_encode(frame, sizeof frame, ESPT_INPUT_PART, seq, payload, ESPT_PIECE_HEAD_BYTES + n);
    CHECK(len > 0);
    fake_board_input(frame, len);
}

/* A 256 KB input in the largest pieces a frame carries, one piece at a time; the
 * output (larger than a frame too) pulled back in pieces, byte-equal to the engine's. */
static void test_big_tensors(void)
{
    test_engine_config_t cfg;
    const uint32_t piece = ESPT_MAX_PAYLOAD - ESPT_PIECE_HEAD_BYTES;
    const uint32_t out_bytes = 3u * ESPT_MAX_PAYLOAD + 17u;
    uint32_t off, i;
    uint16_t seq = 1, rsp_seq = 0;
    long k;
    test_engine_defaults(&cfg);
    cfg.input = test_engine_tensor(ESPT_DTYPE_INT8, 4, 1, 256, 256, 4, 1.0f, 0);
    cfg.output = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, (uint16_t)out_bytes, 1, 1, 1.0f, 0);
    if (!CHECK_EQ(cfg.input.bytes, BIG_BYTES) || !start(&cfg))
        return;
    for (i = 0; i < BIG_BYTES; i++)
        image[i] = (uint8_t)(i * 31u + (i >> 9));
    for (off = 0; off < BIG_BYTES; off += piece, seq++) {
        uint32_t n = BIG_BYTES - off < piece ? BIG_BYTES - off : piece;
        fake_board_take_output();
        send_piece(seq, 77, off, image + off, n);
        if (!CHECK_EQ(serve_and_walk(), 1))
            return;
        if (off + n < BIG_BYTES) {
            if (!CHECK_EQ(replies[0].type, ESPT_INPUT_ACK)
                || !CHECK_EQ(espt_get_u32(replies[0].payload + 2), off + n))
                return;
        } else {
            if (!CHECK_EQ(replies[0].type, ESPT_INFER_RSP) || !CHECK_EQ(replies[0].len, ESPT_INFER_HEAD_BYTES))
                return;
            rsp_seq = replies[0].seq;
        }
    }
    CHECK_EQ(test_engine_invocations(), 1);
    test_engine_expected(image, BIG_BYTES, want, out_bytes);
    /* the output in pieces of up to 200 bytes, all requests queued at once (pipelined) */
    fake_board_take_output();
    for (off = 0; off < out_bytes; off += 200) {
        uint8_t req[ESPT_OUTPUT_REQ_BYTES];
        uint16_t n = (uint16_t)(out_bytes - off < 200 ? out_bytes - off : 200);
        espt_put_u16(req, rsp_seq);
        espt_put_u32(req + 2, off);
        espt_put_u16(req + 6, n);
        fake_board_input(frame, espt_frame_encode(frame, sizeof frame, ESPT_OUTPUT_REQ, seq++, req, sizeof req));
    }
    k = serve_and_walk();
    if (!CHECK_EQ(k, (long)((out_bytes + 199) / 200)))
        return;
    for (i = 0; i < (uint32_t)k; i++) {
        uint32_t at = espt_get_u32(replies[i].payload + 2);
        if (!CHECK_EQ(replies[i].type, ESPT_OUTPUT_PART) || !CHECK_EQ(at, i * 200u))
            return;
        memcpy(got + at, replies[i].payload + ESPT_PIECE_HEAD_BYTES, replies[i].len - ESPT_PIECE_HEAD_BYTES);
    }
    CHECK_MEM(got, want, out_bytes);
}

/* Pieces arriving in one stream, the 3rd lost: the device takes 1 and 2, acknowledges
 * the rest with what it holds, and the resent tail completes the same output. */
static void test_lost_piece_in_a_stream(void)
{
    test_engine_config_t cfg;
    uint32_t off;
    uint16_t seq = 1;
    long k, i;
    test_engine_defaults(&cfg);
    cfg.input = test_engine_tensor(ESPT_DTYPE_INT8, 1, 1000, 1, 1, 1, 1.0f, 0);
    if (!start(&cfg))
        return;
    for (off = 0; off < 1000; off++)
        image[off] = (uint8_t)(off ^ 0x5A);
    for (off = 0; off < 1000; off += 100, seq++)
        if (off != 200)
            send_piece(seq, 3, off, image + off, 100);
    k = serve_and_walk();
    if (!CHECK_EQ(k, 9))
        return;
    for (i = 0; i < k; i++) {
        CHECK_EQ(replies[i].type, ESPT_INPUT_ACK);
        CHECK_EQ(espt_get_u32(replies[i].payload + 2), i < 2 ? (uint32_t)(100 * (i + 1)) : 200u);
    }
    fake_board_take_output();
    for (off = 200; off < 1000; off += 100, seq++)
        send_piece(seq, 3, off, image + off, 100);
    if (!CHECK_EQ(serve_and_walk(), 8) || !CHECK_EQ(replies[7].type, ESPT_INFER_RSP))
        return;
    test_engine_expected(image, 1000, want, 10);
    CHECK_MEM(replies[7].payload + ESPT_INFER_HEAD_BYTES, want, 10);
}

/* Pieces need a ready engine, and a failing set_input closes the transfer. */
static void test_pieces_need_a_ready_engine(void)
{
    test_engine_config_t cfg;
    test_engine_defaults(&cfg);
    cfg.init_status = ESPT_STATUS_ARENA_TOO_SMALL;
    if (!start(&cfg))
        return;
    send_piece(1, 1, 0, image, 4);
    if (CHECK_EQ(serve_and_walk(), 1))
        CHECK(replies[0].type == ESPT_ERROR && replies[0].payload[0] == ESPT_ERR_NOT_READY);
    test_engine_defaults(&cfg);
    cfg.fail_set_input = 1;
    if (!start(&cfg))
        return;
    send_piece(2, 1, 0, image, 4);
    if (CHECK_EQ(serve_and_walk(), 1))
        CHECK(replies[0].type == ESPT_ERROR && replies[0].payload[0] == ESPT_ERR_INVOKE_FAILED);
}

void test_pieces(const char *vectors_path)
{
    if (!CHECK_EQ(vectors_load(vectors_path, &vecs), 0))
        return;
    RUN(test_transfer_vectors);
    RUN(test_big_tensors);
    RUN(test_lost_piece_in_a_stream);
    RUN(test_pieces_need_a_ready_engine);
}
