/* libFuzzer target: arbitrary bytes through the MLPerf Tiny command loop
 * (core/mlperf_tiny.c) on the fake board with the test engine. Seeds: fuzz/mlperf_seeds.
 *
 * Input: byte 0 configures the run, the rest is the wire.
 *   bits 0-1  engine init status (3 means 0: ready)
 *   bit 2     invoke fails       bit 3   get_output fails
 *   bits 4-6  bytes per read: 0 (as many as queued), 1, 2, 3, 7, 16, 64, 255
 *   bit 7     the anomaly-detection shape: int8 [1,640] in and out (else [1,4,4,1] in,
 *             [1,10] out)
 * Built with a small ESPT_MLPERF_MAX_COUNT so `infer N` stays quick.
 *
 * Invariants checked (abort on violation, so libFuzzer keeps the input):
 *   - no overrun (ASan/UBSan), the loop never fails on the fake link;
 *   - the output is lines of printable ASCII, each ending in CRLF;
 *   - exactly one m-ready after boot and one per '%' received;
 *   - every error line is e-[...]; every m-results-[...] holds numbers only;
 *   - the engine runs no more often than the infer commands asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_board.h"
#include "mlperf_tiny.h"
#include "test_engine.h"

#define REQUIRE(cond)                                                                         \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_mlperf_tiny: invariant failed at line %d: %s\n", __LINE__, \
                    #cond);                                                                   \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

static test_engine_config_t cfg;

static void configure(uint8_t c)
{
    static const size_t read_sizes[8] = {0, 1, 2, 3, 7, 16, 64, 255};
    test_engine_defaults(&cfg);
    cfg.init_status = (uint8_t)((c & 3u) == 3u ? 0u : (c & 3u));
    cfg.fail_invoke = (c >> 2) & 1;
    cfg.fail_get_output = (c >> 3) & 1;
    if (c & 0x80u) {
        cfg.input = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, 640, 1, 1, 0.05f, 3);
        cfg.output = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, 640, 1, 1, 0.1f, -5);
    }
    fake_board_reset();
    fake_board_set_read_max(read_sizes[(c >> 4) & 7u]);
    fake_board_close_link();
    test_engine_configure(&cfg);
}

static int starts_with(const uint8_t *s, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(s, prefix, k) == 0;
}

static void check_line(const uint8_t *s, size_t n)
{
    size_t i;
    if (starts_with(s, n, "e-"))
        REQUIRE(n >= 4 && s[2] == '[' && s[n - 1] == ']');
    if (starts_with(s, n, "m-results-[")) {
        REQUIRE(s[n - 1] == ']');
        for (i = 11; i + 1 < n; i++)
            REQUIRE(strchr("0123456789.,-naif", s[i]) != NULL);
    }
}

/* The output, checked as it comes (taken after every poll, so it never fills the
 * capture): the current line and the m-ready count. */
static uint8_t cur[1u << 16];
static size_t cur_len;
static int cur_cr;
static unsigned long readies;

static void take_output(void)
{
    size_t n, i;
    const uint8_t *out = fake_board_output(&n);
    REQUIRE(!fake_board_output_overflowed());
    for (i = 0; i < n; i++) {
        uint8_t c = out[i];
        if (cur_cr) {
            REQUIRE(c == '\n');
            check_line(cur, cur_len);
            if (cur_len == 7 && memcmp(cur, "m-ready", 7) == 0)
                readies++;
            cur_len = 0;
            cur_cr = 0;
        } else if (c == '\r') {
            cur_cr = 1;
        } else {
            REQUIRE(c >= 0x20 && c < 0x7F);
            if (cur_len < sizeof cur)
                cur[cur_len++] = c;
        }
    }
    fake_board_take_output();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i;
    unsigned long percents = 0, max_invokes = 0;
    if (size < 1)
        return 0;
    configure(data[0]);
    cur_len = 0;
    cur_cr = 0;
    readies = 0;
    for (i = 1; i < size; i++)
        if (data[i] == '%') {
            percents++;
            max_invokes += 2u * ESPT_MLPERF_MAX_COUNT + 10u; /* N + W, W's default 10 */
        }
    fake_board_input(data + 1, size - 1);
    REQUIRE(espt_mlperf_init() == 0);
    take_output();
    while (fake_board_remaining() > 0) {
        REQUIRE(espt_mlperf_poll(10) == 0);
        take_output();
    }
    REQUIRE(espt_mlperf_poll(10) < 0); /* the closed link ends the loop */
    take_output();
    REQUIRE(cur_len == 0 && !cur_cr); /* nothing after the last CRLF */
    REQUIRE(readies == percents + 1);
    REQUIRE(test_engine_invocations() <= max_invokes);
    return 0;
}
