/* CRC, frame encoding and the parser against docs/protocol-vectors.txt. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "crc32.h"
#include "profile.h"
#include "protocol.h"
#include "tests.h"
#include "vectors.h"

static vectors_t vec;
static espt_parser_t parser;
static uint8_t big[3 * ESPT_MAX_FRAME];
static const uint8_t zeros[4096];

static void test_crc32(void)
{
    const uint8_t *check = (const uint8_t *)"123456789";
    CHECK_EQ(espt_crc32(check, 9), 0xCBF43926u);
    CHECK_EQ(espt_crc32(check, 0), 0u);
    CHECK_EQ(espt_crc32((const uint8_t *)"a", 1), 0xE8B7BE43u);
    /* zlib-style continuation gives the one-shot value */
    CHECK_EQ(espt_crc32_update(espt_crc32(check, 4), check + 4, 5), 0xCBF43926u);
    CHECK_EQ(espt_crc32(zeros, sizeof zeros), 0xC71C0011u); /* zlib.crc32(bytes(4096)) */
}

static void test_vectors(const char *path)
{
    size_t i;
    check_begin("vectors_load");
    CHECK_EQ(vectors_load(path, &vec), 0);
    CHECK(vec.n_frames >= 8);
    CHECK(vec.n_streams >= 12);
    check_end();

    for (i = 0; i < vec.n_frames; i++) {
        const frame_vector_t *v = &vec.frames[i];
        uint8_t out[VEC_BYTES + ESPT_FRAME_OVERHEAD];
        espt_event_t ev;
        char name[96];
        size_t n;
        snprintf(name, sizeof name, "frame %s", v->name);
        check_begin(name);
        n = espt_frame_encode(out, sizeof out, v->type, v->seq, v->payload, v->payload_len);
        CHECK_EQ(n, v->frame_len);
        CHECK_MEM(out, v->frame, v->frame_len);
        /* in place: payload already at out + 7 */
        memset(out, 0, sizeof out);
        memcpy(out + ESPT_HEADER_BYTES, v->payload, v->payload_len);
        n = espt_frame_encode(out, sizeof out, v->type, v->seq, out + ESPT_HEADER_BYTES,
                              v->payload_len);
        CHECK_EQ(n, v->frame_len);
        CHECK_MEM(out, v->frame, v->frame_len);
        /* and it parses back */
        espt_parser_init(&parser, ESPT_MAX_PAYLOAD);
        CHECK_EQ(espt_parser_push(&parser, v->frame, v->frame_len), v->frame_len);
        if (CHECK_EQ(espt_parser_next(&parser, &ev), 1)) {
            CHECK_EQ(ev.kind, ESPT_EVENT_FRAME);
            CHECK_EQ(ev.type, v->type);
            CHECK_EQ(ev.seq, v->seq);
            CHECK_EQ(ev.len, v->payload_len);
            CHECK_MEM(ev.payload, v->payload, v->payload_len);
        }
        CHECK_EQ(espt_parser_next(&parser, &ev), 0);
        CHECK_EQ(espt_parser_pending(&parser), 0);
        check_end();
    }

    /* each stream with its chunks pushed whole, then 1, 2, 3 and 7 bytes at a time: the
     * parser's events must not depend on how the bytes were split */
    for (i = 0; i < vec.n_streams; i++) {
        static char events[VEC_TEXT];
        static uint8_t chunk[VEC_TEXT];
        const stream_vector_t *v = &vec.streams[i];
        static const size_t steps[] = {0, 1, 2, 3, 7};
        size_t k;
        char name[96];
        snprintf(name, sizeof name, "stream %s", v->name);
        check_begin(name);
        for (k = 0; k < sizeof steps / sizeof steps[0]; k++) {
            CHECK_EQ(stream_run(&parser, v->max_payload, v->chunks, steps[k], chunk, sizeof chunk,
                                events, sizeof events), 0);
            if (!CHECK_STR(events, v->events))
                fprintf(stderr, "  (pushed %zu bytes at a time)\n", steps[k]);
        }
        check_end();
    }
}

static void test_ready_payload_matches_vector(void)
{
    uint8_t p[ESPT_READY_BYTES];
    static const uint8_t want[] = {0x02, 0x00, 0xef, 0xbe, 0xad, 0xde}; /* frame `ready` */
    CHECK_EQ(espt_pack_ready(p, 0, 0xDEADBEEFu), sizeof want);
    CHECK_MEM(p, want, sizeof want);
}

static const frame_vector_t *frame_vector(const char *name)
{
    size_t i;
    for (i = 0; i < vec.n_frames; i++)
        if (strcmp(vec.frames[i].name, name) == 0)
            return &vec.frames[i];
    check_true(0, "the vector is in protocol-vectors.txt", __FILE__, __LINE__);
    return NULL;
}

/* The fields of the vector info_rsp_detail. */
static void info_rsp_detail_fields(espt_model_info_t *m, espt_info_fields_t *f)
{
    static const uint16_t in_dims[4] = {1, 28, 28, 1}, out_dims[4] = {1, 10, 1, 1};
    memset(m, 0, sizeof *m);
    memset(f, 0, sizeof *f);
    m->status = ESPT_STATUS_OP_NOT_REGISTERED;
    m->engine = ESPT_ENGINE_TFLM;
    m->model_crc32 = 0xDEADBEEFu;
    m->model_bytes = 106232u;
    m->arena_bytes = 20192u;
    m->arena_used_bytes = 20000u; /* not ready: INFO says 0 */
    m->input.dtype = m->output.dtype = ESPT_DTYPE_INT8;
    m->input.rank = 4;
    memcpy(m->input.dims, in_dims, sizeof in_dims);
    m->input.scale = 1.0f / 255.0f;
    m->input.zero_point = -128;
    m->output.rank = 2;
    memcpy(m->output.dims, out_dims, sizeof out_dims);
    m->output.scale = 0.125f;
    m->output.zero_point = 5;
    strcpy(m->detail, "RESHAPE (op 3) not registered");
    f->model = m;
    f->cpu_mhz = 240;
    f->max_payload = 4096;
    f->rx_buffer_bytes = 8214;
    f->flags = ESPT_INFO_FLAG_PIECES;
    f->chip = "esp32";
    f->firmware_version = "esptiny-fw 0.1.0";
}

static void test_info_payload_matches_vector(void)
{
    const frame_vector_t *v = frame_vector("info_rsp_detail");
    espt_model_info_t m;
    espt_info_fields_t f;
    uint8_t out[ESPT_INFO_MAX_BYTES];
    if (v == NULL)
        return;
    info_rsp_detail_fields(&m, &f);
    CHECK_EQ(espt_pack_info(out, sizeof out, &f), v->payload_len);
    CHECK_MEM(out, v->payload, v->payload_len);
    CHECK_EQ(espt_pack_info(out, sizeof out - 1, &f), 0); /* cap below the largest INFO */
}

/* The detail is optional and bounded: absent when empty, at most ESPT_INFO_STR_MAX
 * bytes even when the engine left it unterminated. */
static void test_info_detail_bounds(void)
{
    espt_model_info_t m;
    espt_info_fields_t f;
    uint8_t out[ESPT_INFO_MAX_BYTES];
    size_t base = ESPT_INFO_FIXED_BYTES + 1 + 5 + 1 + 16; /* chip esp32, esptiny-fw 0.1.0 */
    info_rsp_detail_fields(&m, &f);
    m.detail[0] = '\0';
    CHECK_EQ(espt_pack_info(out, sizeof out, &f), base);
    memset(m.detail, 'x', sizeof m.detail); /* no terminator */
    if (CHECK_EQ(espt_pack_info(out, sizeof out, &f), base + 1 + ESPT_INFO_STR_MAX)) {
        CHECK_EQ(out[base], ESPT_INFO_STR_MAX);
        CHECK_MEM(out + base + 1, m.detail, ESPT_INFO_STR_MAX);
    }
    /* the largest INFO: every string at its limit */
    memset(big, 'c', 100);
    big[100] = 0;
    f.chip = f.firmware_version = (const char *)big;
    CHECK_EQ(espt_pack_info(out, sizeof out, &f), ESPT_INFO_MAX_BYTES);
}

static void test_error_payload(void)
{
    uint8_t p[2 + ESPT_ERROR_TEXT_MAX];
    static const uint8_t want[] = {0x01, 0x00, 'c', 'r', 'c'}; /* frame `error_crc` */
    char long_text[100];
    CHECK_EQ(espt_pack_error(p, ESPT_ERR_CRC, "crc"), sizeof want);
    CHECK_MEM(p, want, sizeof want);
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    CHECK_EQ(espt_pack_error(p, ESPT_ERR_BAD_LENGTH, long_text), 2 + ESPT_ERROR_TEXT_MAX);
    CHECK_STR(espt_error_name(ESPT_ERR_INVOKE_FAILED), "invoke failed");
}

static void test_encode_bounds(void)
{
    uint8_t out[32];
    CHECK_EQ(espt_frame_encode(out, sizeof out, 0x03, 1, big, sizeof out - 10), 0);
    CHECK_EQ(espt_frame_encode(out, sizeof out, 0x03, 1, big, sizeof out - 11), sizeof out);
    CHECK_EQ(espt_frame_encode(out, 10, 0x01, 1, NULL, 0), 0);
    CHECK_EQ(espt_frame_encode(big, sizeof big, 0x03, 1, big + 100, 0x10000), 0);
}

/* The largest frame fills the buffer exactly; noise beyond it is taken in turns. */
static void test_parser_bounded_buffer(void)
{
    espt_event_t ev;
    size_t n, pushed, frames = 0;
    memset(big, 0x11, sizeof big);
    n = espt_frame_encode(big, sizeof big, 0x03, 77, big + 500, ESPT_MAX_PAYLOAD);
    CHECK_EQ(n, ESPT_MAX_FRAME);
    espt_parser_init(&parser, ESPT_MAX_PAYLOAD);
    CHECK_EQ(espt_parser_push(&parser, big, sizeof big), ESPT_MAX_FRAME);
    CHECK_EQ(espt_parser_next(&parser, &ev), 1);
    CHECK_EQ(ev.kind, ESPT_EVENT_FRAME);
    CHECK_EQ(ev.len, ESPT_MAX_PAYLOAD);
    CHECK_EQ(ev.seq, 77);
    /* 0x11 noise, then the same frame again at the end */
    memset(big, 0x11, sizeof big);
    n = espt_frame_encode(big + sizeof big - ESPT_MAX_FRAME, ESPT_MAX_FRAME, 0x03, 78,
                          big + 600, ESPT_MAX_PAYLOAD);
    espt_parser_init(&parser, ESPT_MAX_PAYLOAD);
    for (pushed = 0; pushed < sizeof big;) {
        size_t k = espt_parser_push(&parser, big + pushed, sizeof big - pushed);
        if (!CHECK(k > 0))
            break;
        pushed += k;
        while (espt_parser_next(&parser, &ev)) {
            CHECK_EQ(ev.kind, ESPT_EVENT_FRAME);
            CHECK_EQ(ev.seq, 78);
            frames++;
        }
    }
    CHECK_EQ(frames, 1);
    CHECK_EQ(parser.noise_bytes, sizeof big - ESPT_MAX_FRAME);
    CHECK_EQ(espt_parser_pending(&parser), 0);
}

/* Noise is dropped at once, except a trailing A5 (the 5A may follow). */
static void test_parser_sync_keeps_only_a5(void)
{
    espt_event_t ev;
    static const struct {
        const char *bytes;
        size_t pending;
    } cases[] = {{"hello", 0}, {"hello\xa5", 1}, {"\xa5\xa5\xa5", 1}, {"\xa5\x5a\x01", 3},
                 {"\x5a\xa5x", 0}};
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].bytes);
        espt_parser_init(&parser, 64);
        CHECK_EQ(espt_parser_push(&parser, (const uint8_t *)cases[i].bytes, n), n);
        CHECK_EQ(espt_parser_next(&parser, &ev), 0);
        CHECK_EQ(espt_parser_pending(&parser), cases[i].pending);
        CHECK_EQ(parser.noise_bytes, n - cases[i].pending);
        /* a quiet link drops a partial frame start, never a lone A5 */
        CHECK_EQ(espt_parser_timeout(&parser, &ev), cases[i].pending >= 2);
    }
}

/* max_payload above the compiled buffer is clamped, so a header cannot overrun it. */
static void test_parser_clamps_max_payload(void)
{
    espt_parser_init(&parser, 0xFFFF);
    CHECK_EQ(parser.max_payload, ESPT_MAX_PAYLOAD);
}

/* The vector profile_rsp, packed field by field. */
static void test_profile_payload_matches_vector(void)
{
    const frame_vector_t *v = frame_vector("profile_rsp");
    const frame_vector_t *req = frame_vector("profile_req");
    uint8_t out[ESPT_PROFILE_HEAD_BYTES + 2 * ESPT_PROFILE_RECORD_BYTES];
    espt_profile_step_t conv_pool, fc;
    size_t n;
    if (v == NULL || req == NULL)
        return;
    memset(&conv_pool, 0, sizeof conv_pool);
    memset(&fc, 0, sizeof fc);
    conv_pool.op_count = 2;
    conv_pool.op_index[0] = 2;
    conv_pool.op_index[1] = 3;
    conv_pool.op_code[0] = 3;  /* CONV_2D */
    conv_pool.op_code[1] = 17; /* MAX_POOL_2D */
    conv_pool.counter = 1234567890123ull;
    conv_pool.arena_live_bytes = 6272;
    fc.op_count = 1;
    fc.op_index[0] = 4;
    fc.op_index[1] = 99; /* past op_count: sent as 0xFFFF */
    fc.op_code[0] = 9;   /* FULLY_CONNECTED */
    fc.counter = 45678;
    fc.arena_live_bytes = 1296;
    n = espt_pack_profile_head(out, ESPT_COUNTER_INSTRUCTIONS, ESPT_PROFILE_RECORDED, 3, 1, 2);
    n += espt_pack_profile_step(out + n, &conv_pool);
    n += espt_pack_profile_step(out + n, &fc);
    CHECK_EQ(n, v->payload_len);
    CHECK_MEM(out, v->payload, v->payload_len);
    CHECK_EQ(req->payload_len, ESPT_PROFILE_REQ_BYTES);
    CHECK_EQ(espt_get_u16(req->payload), 1);
}

void test_protocol(const char *vectors_path)
{
    RUN(test_crc32);
    test_vectors(vectors_path);
    RUN(test_ready_payload_matches_vector);
    RUN(test_info_payload_matches_vector);
    RUN(test_profile_payload_matches_vector);
    RUN(test_info_detail_bounds);
    RUN(test_error_payload);
    RUN(test_encode_bounds);
    RUN(test_parser_bounded_buffer);
    RUN(test_parser_sync_keeps_only_a5);
    RUN(test_parser_clamps_max_payload);
}
