/* The MLPerf Tiny API (core/mlperf_tiny.c) driven through the fake board and the test
 * engine: every reply checked byte for byte, floats against the C library's printf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fake_board.h"
#include "mlperf_tiny.h"
#include "test_engine.h"
#include "tests.h"

#define BOOT "m-timestamp-mode-performance\r\nm-lap-us-0\r\nm-init-done\r\nm-ready\r\n"

static test_engine_config_t engine;
static char expect[65536];

static void tick_ms(void)
{
    fake_board_tick(160000u, 1000u); /* each inference: 1 ms, 160,000 cycles */
}

static int start(const test_engine_config_t *cfg)
{
    size_t n;
    const uint8_t *out;
    fake_board_reset();
    test_engine_configure(cfg);
    if (!CHECK_EQ(espt_mlperf_init(), 0))
        return 0;
    out = fake_board_output(&n);
    if (!CHECK_EQ(n, strlen(BOOT)) || !CHECK_MEM(out, BOOT, n))
        return 0;
    fake_board_take_output();
    return 1;
}

/* Send text, return what the device wrote (NUL-terminated, static). */
static const char *send(const char *text)
{
    static char got[65536];
    size_t n;
    const uint8_t *out;
    fake_board_take_output();
    CHECK_EQ(espt_mlperf_feed((const uint8_t *)text, strlen(text)), 0);
    out = fake_board_output(&n);
    if (n >= sizeof got)
        n = sizeof got - 1;
    memcpy(got, out, n);
    got[n] = '\0';
    return got;
}

static void expect_reply(const char *command, const char *reply)
{
    const char *got = send(command);
    if (!CHECK_STR(got, reply))
        fprintf(stderr, "  after %s\n", command);
}

static void hex_commands(const uint8_t *data, size_t n, char *text, size_t cap)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++) {
        if (i % 31 == 0)
            k += (size_t)snprintf(text + k, cap - k, "%sdb ", i ? "%" : "");
        k += (size_t)snprintf(text + k, cap - k, "%02x", data[i]);
    }
    snprintf(text + k, cap - k, "%%");
}

static void basic_commands(void)
{
    test_engine_defaults(&engine);
    if (!start(&engine))
        return;
    expect_reply("name%", "m-name-dut-[esptiny]\r\nm-ready\r\n");
    expect_reply("profile%", "m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\n"
                             "m-model-[unknown]\r\nm-ready\r\n");
    fake_board_tick(0, 1234567u);
    expect_reply("timestamp%", "m-lap-us-1234567\r\nm-ready\r\n");
    expect_reply("  name  %", "m-name-dut-[esptiny]\r\nm-ready\r\n");
    expect_reply("\r\nname%\n", "m-name-dut-[esptiny]\r\nm-ready\r\n");
    expect_reply("bogus arg%", "e-[Unknown command: bogus]\r\nm-ready\r\n");
    expect_reply("%", "e-[Unknown command: ]\r\nm-ready\r\n");
    expect_reply("na\x01me%", "e-[Unknown command: na?me]\r\nm-ready\r\n");
    expect_reply("results%", "e-[No results: run 'infer N W' first]\r\nm-ready\r\n");
    {
        const char *help = send("help%");
        CHECK(strncmp(help, "ULPMark for tinyML Firmware V0.0.1\r\n\r\n", 38) == 0);
        CHECK(strstr(help, "infer N [W=10]") != NULL);
        CHECK(strlen(help) > 9 && strcmp(help + strlen(help) - 9, "m-ready\r\n") == 0);
    }
    /* Bytes split anywhere: a command runs at its '%' only. */
    CHECK_STR(send("na"), "");
    expect_reply("me%", "m-name-dut-[esptiny]\r\nm-ready\r\n");
}

static void command_buffer_bounded(void)
{
    char longcmd[200];
    test_engine_defaults(&engine);
    if (!start(&engine))
        return;
    memset(longcmd, 'x', 80);
    strcpy(longcmd + 80, "%");
    expect_reply(longcmd, "e-[Unknown command: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx]\r\nm-ready\r\n");
    memset(longcmd, 'x', 81);
    strcpy(longcmd + 81, "%");
    expect_reply(longcmd, "e-[Command longer than 80 characters]\r\nm-ready\r\n");
    memset(longcmd, 'y', 150);
    strcpy(longcmd + 150, "%name%");
    expect_reply(longcmd, "e-[Command longer than 80 characters]\r\nm-ready\r\n"
                          "m-name-dut-[esptiny]\r\nm-ready\r\n");
}

static void db_commands(void)
{
    uint8_t data[16];
    char text[512];
    size_t i;
    test_engine_defaults(&engine); /* input int8 [1,4,4,1]: 16 bytes, or 64 as float32 */
    if (!start(&engine))
        return;
    expect_reply("db 00%", "e-[db HEX needs a 'db load N' first]\r\nm-ready\r\n");
    expect_reply("db%", "e-[Command 'db' requires a subcommand]\r\nm-ready\r\n");
    expect_reply("db load%", "e-[Command 'db load' requires the # of bytes]\r\nm-ready\r\n");
    expect_reply("db load 0%", "e-[Command 'db load' needs a byte count above 0, not '0']\r\nm-ready\r\n");
    expect_reply("db load -3%", "e-[Command 'db load' needs a byte count above 0, not '-3']\r\nm-ready\r\n");
    expect_reply("db load 12x%", "e-[Command 'db load' needs a byte count above 0, not '12x']\r\nm-ready\r\n");
    expect_reply("db load 65%", "e-[db load 65 exceeds the input, at most 64 bytes]\r\nm-ready\r\n");
    expect_reply("db load 4294967312%", "e-[Command 'db load' needs a byte count above 0, not '4294967312']\r\nm-ready\r\n");
    expect_reply("db load 16%", "m-[Expecting 16 bytes]\r\nm-ready\r\n");
    expect_reply("db 0%", "e-[Insufficent number of hex digits]\r\nm-ready\r\n");
    expect_reply("db 01zz%", "e-[Invalid hex digit 'zz']\r\nm-ready\r\n");
    /* The 01 before the bad pair stayed: 15 more bytes complete the load. */
    expect_reply("db 02030405060708090A0B0C0D0E0F%", "m-ready\r\n");
    expect_reply("infer 1 0%", "e-[Input incomplete: 15 of 16 bytes loaded]\r\nm-ready\r\n");
    expect_reply("db FFEE%", "m-load-done\r\nm-ready\r\n"); /* EE disregarded */
    expect_reply("db 00%", "e-[All 16 bytes are loaded; 'db load N' starts again]\r\nm-ready\r\n");
    expect_reply("db print%", "m-buffer-01-02-03-04-05-06-07-08\r\n"
                              "m-buffer-09-0a-0b-0c-0d-0e-0f-ff\r\nm-ready\r\n");
    expect_reply("db load 3%", "m-[Expecting 3 bytes]\r\nm-ready\r\n");
    expect_reply("db print%", "m-buffer-00-00-00\r\nm-ready\r\n");
    expect_reply("db 0102%", "m-ready\r\n");
    expect_reply("db print%", "m-buffer-01-02-00\r\nm-ready\r\n");
    expect_reply("db 00%", "m-load-done\r\nm-ready\r\n");
    expect_reply("infer 1 0%", "e-[Input has 3 bytes; the model takes 16 (or 4 per element as float32)]\r\nm-ready\r\n");
    /* The runner's way: db load N, then 31 bytes a command. */
    for (i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 17u);
    expect_reply("db load 16%", "m-[Expecting 16 bytes]\r\nm-ready\r\n");
    hex_commands(data, sizeof data, text, sizeof text);
    expect_reply(text, "m-load-done\r\nm-ready\r\n");
}

/* The lines `infer N W` must print for the test engine's output on `in`. */
static void expected_infer(const uint8_t *in, size_t n_in, long n, long w, uint64_t t0)
{
    uint8_t q[10];
    size_t k, i;
    test_engine_expected(in, n_in, q, sizeof q);
    k = (size_t)snprintf(expect, sizeof expect,
                         "m-warmup-start-%ld\r\nm-warmup-done\r\nm-infer-start-%ld\r\n"
                         "m-lap-us-%llu\r\nm-lap-us-%llu\r\nm-infer-cycles-%llu\r\n"
                         "m-infer-done\r\nm-results-[",
                         w, n, (unsigned long long)t0, (unsigned long long)(t0 + 1000u * (uint64_t)n),
                         (unsigned long long)(160000u * (uint64_t)n));
    for (i = 0; i < sizeof q; i++)
        k += (size_t)snprintf(expect + k, sizeof expect - k, "%s%0.3f", i ? "," : "",
                              (double)((float)((int)(int8_t)q[i] + 128) * 0.00390625f));
    snprintf(expect + k, sizeof expect - k, "]\r\nm-ready\r\n");
}

static void infer_performance_and_accuracy(void)
{
    uint8_t data[16];
    char text[512];
    size_t i;
    uint64_t t0;
    test_engine_defaults(&engine);
    engine.on_invoke = tick_ms;
    if (!start(&engine))
        return;
    expect_reply("infer 1 0%", "e-[Input incomplete: 0 of 0 bytes loaded]\r\nm-ready\r\n");
    for (i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(200u + i);
    expect_reply("db load 16%", "m-[Expecting 16 bytes]\r\nm-ready\r\n");
    hex_commands(data, sizeof data, text, sizeof text);
    expect_reply(text, "m-load-done\r\nm-ready\r\n");

    /* Accuracy mode: one inference, no warm-up. */
    expected_infer(data, sizeof data, 1, 0, 0);
    expect_reply("infer 1 0%", expect);
    CHECK_EQ(test_engine_invocations(), 1);
    /* Performance mode: W untimed, then N timed. */
    t0 = 1000u * (1u + 3u);
    expected_infer(data, sizeof data, 20, 3, t0);
    expect_reply("infer 20 3%", expect);
    CHECK_EQ(test_engine_invocations(), 1 + 3 + 20);
    /* The API's defaults: N 1, W 10. */
    t0 = 1000u * (24u + 10u);
    expected_infer(data, sizeof data, 1, 10, t0);
    expect_reply("infer%", expect);
    CHECK_EQ(test_engine_invocations(), 24 + 11);
    t0 = 1000u * (35u + 10u);
    expected_infer(data, sizeof data, 2, 10, t0);
    expect_reply("infer 2%", expect);
    /* results repeats the last output. */
    {
        const char *r = strstr(expect, "m-results-");
        expect_reply("results%", r);
    }
    expect_reply("infer 0 0%", "e-[Inference iterations must be >0]\r\nm-ready\r\n");
    expect_reply("infer x%", "e-[Inference iterations must be >0]\r\nm-ready\r\n");
    expect_reply("infer 1 -1%", "e-[Inference warmup must be >=0]\r\nm-ready\r\n");
    expect_reply("infer 1000000000 0%", "e-[Inference iterations must be >0]\r\nm-ready\r\n");
    CHECK_EQ(test_engine_invocations(), 47);
}

static void engine_failures(void)
{
    uint8_t data[16] = {0};
    char text[512];
    test_engine_defaults(&engine);
    engine.init_status = ESPT_STATUS_ARENA_TOO_SMALL;
    strcpy(engine.detail, "needs 9000\x07 bytes");
    if (!start(&engine))
        return;
    expect_reply("db load 16%", "m-[Expecting 16 bytes]\r\nm-ready\r\n");
    hex_commands(data, sizeof data, text, sizeof text);
    expect_reply(text, "m-load-done\r\nm-ready\r\n");
    expect_reply("infer 1 0%", "e-[Model not ready: arena too small: needs 9000? bytes]\r\nm-ready\r\n");
    CHECK_EQ(test_engine_invocations(), 0);

    test_engine_defaults(&engine);
    engine.fail_invoke = 1;
    if (!start(&engine))
        return;
    expect_reply("db load 16%", "m-[Expecting 16 bytes]\r\nm-ready\r\n");
    expect_reply(text, "m-load-done\r\nm-ready\r\n");
    expect_reply("infer 5 2%", "m-warmup-start-2\r\ne-[Inference failed]\r\nm-ready\r\n");
    expect_reply("results%", "e-[No results: run 'infer N W' first]\r\nm-ready\r\n");

    /* A write failure is fatal: the device loop returns. */
    test_engine_defaults(&engine);
    if (!start(&engine))
        return;
    fake_board_fail_writes_after(0);
    CHECK(espt_mlperf_feed((const uint8_t *)"name%", 5) < 0);
}

/* The anomaly-detection form: 640 float32 values in, quantized on the device; results
 * is the mean squared error between the dequantized output and the input. */
static void anomaly_detection(void)
{
    static uint8_t bytes[640 * 4];
    static char text[640 * 4 * 2 + 2048];
    float x[640], scale = 0.05f;
    int8_t q[640];
    uint8_t out[640];
    float sum = 0.0f;
    size_t i;
    test_engine_defaults(&engine);
    engine.input = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, 640, 1, 1, scale, 3);
    engine.output = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, 640, 1, 1, 0.1f, -5);
    if (!start(&engine))
        return;
    expect_reply("profile%", "m-profile-[ULPMark for tinyML Firmware V0.0.1]\r\n"
                             "m-model-[ad01]\r\nm-ready\r\n");
    for (i = 0; i < 640; i++) {
        long r;
        double d;
        x[i] = (float)((double)((int)(i * 37u % 101u) - 50) * 0.0731);
        d = (double)(x[i] / scale);
        r = (long)(d < 0 ? d - 0.5 : d + 0.5) + 3;
        q[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
        memcpy(bytes + 4 * i, &x[i], 4);
    }
    test_engine_expected((const uint8_t *)q, sizeof q, out, sizeof out);
    for (i = 0; i < 640; i++) {
        float d = (float)((int)(int8_t)out[i] + 5) * 0.1f - x[i];
        volatile float sq = d * d;
        sum += sq;
    }
    expect_reply("db load 2561%", "e-[db load 2561 exceeds the input, at most 2560 bytes]\r\nm-ready\r\n");
    expect_reply("db load 2560%", "m-[Expecting 2560 bytes]\r\nm-ready\r\n");
    hex_commands(bytes, sizeof bytes, text, sizeof text);
    expect[0] = '\0';
    for (i = 0; i < (sizeof bytes + 30) / 31 - 1; i++)
        strcat(expect, "m-ready\r\n");
    strcat(expect, "m-load-done\r\nm-ready\r\n");
    expect_reply(text, expect);
    snprintf(expect, sizeof expect, "m-warmup-start-0\r\nm-warmup-done\r\nm-infer-start-1\r\n"
             "m-lap-us-0\r\nm-lap-us-0\r\nm-infer-cycles-0\r\nm-infer-done\r\n"
             "m-results-[%0.3f]\r\nm-ready\r\n", (double)(sum / 640.0f));
    expect_reply("infer 1 0%", expect);
}

static void float_format(void)
{
    static const float cases[] = {0.0f, -0.0f, 0.0005f, 0.0015f, 0.0025f, -0.0001f, 1.0f,
                                  0.99951f, 123.4565f, -7.0625f, 1e10f, 3e18f, 1e-30f,
                                  0.00390625f, 0.12890625f, 0.998046875f, 3.4028235e38f, -1.5e30f,
                                  9.3e15f, 2.5e-3f, 1e-3f, 5e-4f};
    char mine[ESPT_MLPERF_FLOAT_CHARS], libc[64];
    size_t i;
    uint32_t state = 12345u;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        espt_mlperf_float3(cases[i], mine);
        snprintf(libc, sizeof libc, "%0.3f", (double)cases[i]);
        CHECK_STR(mine, libc);
    }
    /* Random floats below 2^53 / 1000 in magnitude; every int8 dequantized. */
    for (i = 0; i < 200000; i++) {
        uint32_t bits;
        float f;
        state = state * 1664525u + 1013904223u;
        bits = state;
        memcpy(&f, &bits, 4);
        if (f != f || f - f != 0.0f)
            continue;
        espt_mlperf_float3(f, mine);
        snprintf(libc, sizeof libc, "%0.3f", (double)f);
        if (!CHECK_STR(mine, libc))
            break;
    }
    for (i = 0; i < 256; i++) {
        float f = (float)((int)i - 128 + 7) * 0.0039215689f;
        espt_mlperf_float3(f, mine);
        snprintf(libc, sizeof libc, "%0.3f", (double)f);
        CHECK_STR(mine, libc);
    }
}

void test_mlperf_tiny(void)
{
    RUN(basic_commands);
    RUN(command_buffer_bounded);
    RUN(db_commands);
    RUN(infer_performance_and_accuracy);
    RUN(engine_failures);
    RUN(anomaly_detection);
    RUN(float_format);
}
