/* The host-runtime board and engine (boards/hostrt, engines/hostrt): the core's device
 * loop driven through callbacks, as host/esptiny/devices/hostrt.py drives it. The engine
 * callbacks here compute out[i] = sum(input) + i over a 4-byte input. */
#include <string.h>

#include "board_hostrt.h"
#include "check.h"
#include "crc32.h"
#include "device_step.h"
#include "engine_hostrt.h"
#include "protocol.h"
#include "reply_walk.h"

static uint8_t rx[4096];
static size_t rx_len, rx_pos;
static uint8_t tx[8192];
static size_t tx_len;
static uint8_t input[4];
static int arena_ok = 1;
static int inits;

static int read_cb(uint8_t *buf, size_t n, uint32_t timeout_ms)
{
    size_t k = rx_len - rx_pos < n ? rx_len - rx_pos : n;
    (void)timeout_ms;
    memcpy(buf, rx + rx_pos, k);
    rx_pos += k;
    return (int)k;
}

static int write_cb(const uint8_t *buf, size_t n)
{
    if (tx_len + n > sizeof tx)
        return -1;
    memcpy(tx + tx_len, buf, n);
    tx_len += n;
    return 0;
}

static void tensor(espt_tensor_info_t *t, uint32_t n)
{
    t->dtype = ESPT_DTYPE_INT8;
    t->rank = 2;
    t->dims[0] = 1;
    t->dims[1] = (uint16_t)n;
    t->bytes = n;
}

static int init_cb(espt_model_info_t *info)
{
    inits++;
    info->arena_bytes = 2048;
    tensor(&info->input, 4);
    tensor(&info->output, 3);
    if (!arena_ok) {
        strcpy(info->detail, "runtime could not allocate 2048 B");
        return ESPT_STATUS_ARENA_TOO_SMALL;
    }
    info->arena_used_bytes = 1500;
    return ESPT_STATUS_READY;
}

static int set_input_cb(const uint8_t *d, size_t n) { memcpy(input, d, n); return n == 4 ? 0 : -1; }
static int invoke_cb(void) { return 0; }

static int get_output_cb(uint8_t *out, size_t n)
{
    size_t i;
    unsigned sum = 0;
    for (i = 0; i < 4; i++)
        sum += input[i];
    for (i = 0; i < n; i++)
        out[i] = (uint8_t)(sum + i);
    return 0;
}

static const uint8_t model[] = "not really a model, but bytes to checksum";
static const espt_hostrt_engine_t engine = {init_cb, set_input_cb, invoke_cb, get_output_cb};

static void feed(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n)
{
    rx_len += espt_frame_encode(rx + rx_len, sizeof rx - rx_len, type, seq, payload, n);
}

static long replies(reply_t *r, size_t cap)
{
    size_t bad = 0;
    return walk_replies(tx, tx_len, r, cap, &bad);
}

static int contains(const uint8_t *p, size_t n, const char *s)
{
    size_t k = strlen(s), i;
    for (i = 0; i + k <= n; i++)
        if (memcmp(p + i, s, k) == 0)
            return 1;
    return 0;
}

static void boot(void)
{
    rx_len = rx_pos = tx_len = 0;
    CHECK_EQ(espt_device_init(), 0);
}

static void test_layout_is_what_the_host_mirrors(void)
{
    CHECK_EQ(espt_hostrt_info_size(), sizeof(espt_model_info_t));
    CHECK_EQ(espt_hostrt_info_detail_offset(), 68); /* 20 B of fields, two 24 B tensors */
    CHECK(espt_hostrt_engine(NULL, model, sizeof model) != 0);
}

static void test_boot_info_infer(void)
{
    reply_t r[8];
    static const uint8_t x[4] = {1, 2, 3, 4};
    uint8_t want_out[3] = {10, 11, 12};
    espt_hostrt_board(read_cb, write_cb, "virtual-esp32c3", 160, 2048);
    CHECK_EQ(espt_hostrt_engine(&engine, model, sizeof model), 0);
    arena_ok = 1;
    boot();
    feed(ESPT_INFO_REQ, 1, NULL, 0);
    feed(ESPT_INFER_REQ, 2, x, 4);
    feed(ESPT_INFER_REQ, 3, x, 3);
    CHECK_EQ(espt_device_poll(0), 0);
    CHECK_EQ(replies(r, 8), 4);
    CHECK_EQ(r[0].type, ESPT_READY);
    CHECK_EQ(r[0].payload[1], ESPT_STATUS_READY);
    CHECK_EQ(r[0].payload[2] | r[0].payload[3] << 8 | (uint32_t)r[0].payload[4] << 16
             | (uint32_t)r[0].payload[5] << 24, espt_crc32(model, sizeof model));
    CHECK_EQ(r[1].type, ESPT_INFO_RSP);
    CHECK(contains(r[1].payload, r[1].len, "virtual-esp32c3"));
    CHECK_EQ(r[2].type, ESPT_INFER_RSP);
    CHECK_EQ(r[2].len, ESPT_INFER_HEAD_BYTES + 3);
    CHECK_MEM(r[2].payload, "\0\0\0\0\0\0\0\0", 8); /* no cycle counter: 0 */
    CHECK_MEM(r[2].payload + ESPT_INFER_HEAD_BYTES, want_out, 3);
    CHECK_EQ(r[3].type, ESPT_ERROR);
    CHECK_EQ(r[3].payload[0], ESPT_ERR_BAD_LENGTH);
}

static void test_not_ready_and_reboot(void)
{
    reply_t r[4];
    static const uint8_t x[4] = {0};
    int before = inits;
    arena_ok = 0;
    boot(); /* a reboot: the engine is set up again */
    CHECK_EQ(inits, before + 1);
    feed(ESPT_INFER_REQ, 9, x, 4);
    CHECK_EQ(espt_device_poll(0), 0);
    CHECK_EQ(replies(r, 4), 2);
    CHECK_EQ(r[0].payload[1], ESPT_STATUS_ARENA_TOO_SMALL);
    CHECK_EQ(r[1].type, ESPT_ERROR);
    CHECK_EQ(r[1].payload[0], ESPT_ERR_NOT_READY);
    CHECK(r[1].len > 1 && memcmp(r[1].payload + 2, "not ready: arena too small", 26) == 0);
    arena_ok = 1;
}

int main(void)
{
    RUN(test_layout_is_what_the_host_mirrors);
    RUN(test_boot_info_infer);
    RUN(test_not_ready_and_reboot);
    return check_summary();
}
