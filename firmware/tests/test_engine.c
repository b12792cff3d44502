#include "test_engine.h"

#include <string.h>

#include "crc32.h"

static test_engine_config_t cfg;
static int configured;
static uint8_t input[TEST_ENGINE_MAX_BYTES];
static uint8_t output[TEST_ENGINE_MAX_BYTES];
static unsigned long invocations;

espt_tensor_info_t test_engine_tensor(uint8_t dtype, uint8_t rank, uint16_t d0, uint16_t d1,
                                      uint16_t d2, uint16_t d3, float scale, int32_t zero_point)
{
    espt_tensor_info_t t;
    uint32_t size = dtype == ESPT_DTYPE_FLOAT32 ? 4u : dtype == ESPT_DTYPE_INT16 ? 2u : 1u;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    t.rank = rank;
    t.dims[0] = d0;
    t.dims[1] = d1;
    t.dims[2] = d2;
    t.dims[3] = d3;
    t.scale = scale;
    t.zero_point = zero_point;
    t.bytes = size * d0 * d1 * d2 * d3;
    return t;
}

void test_engine_defaults(test_engine_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->init_status = ESPT_STATUS_READY;
    c->input = test_engine_tensor(ESPT_DTYPE_INT8, 4, 1, 4, 4, 1, 1.0f / 255.0f, -128);
    c->output = test_engine_tensor(ESPT_DTYPE_INT8, 2, 1, 10, 1, 1, 0.00390625f, -128);
    c->profile_steps = 3;
}

void test_engine_configure(const test_engine_config_t *c)
{
    cfg = *c;
    configured = 1;
}

unsigned long test_engine_invocations(void)
{
    return invocations;
}

void test_engine_expected(const uint8_t *in, size_t n, uint8_t *out, size_t out_n)
{
    uint32_t sum = 0;
    size_t i;
    for (i = 0; i < n; i++)
        sum += in[i];
    for (i = 0; i < out_n; i++)
        out[i] = (uint8_t)(sum + i);
}

int espt_engine_init(espt_model_info_t *info)
{
    static const char description[] = TEST_ENGINE_DESCRIPTION;
    if (!configured) {
        test_engine_defaults(&cfg);
        configured = 1;
    }
    invocations = 0;
    info->status = cfg.init_status;
    info->engine = ESPT_ENGINE_AOT;
    info->model_crc32 = espt_crc32((const uint8_t *)description, sizeof description - 1);
    info->model_bytes = (uint32_t)(sizeof description - 1);
    info->arena_bytes = TEST_ENGINE_ARENA_BYTES;
    info->arena_used_bytes = cfg.init_status == ESPT_STATUS_READY ? TEST_ENGINE_ARENA_USED : 0u;
    info->input = cfg.input;
    info->output = cfg.output;
    memcpy(info->detail, cfg.detail, sizeof info->detail);
    return info->status;
}

int espt_engine_set_input(size_t offset, const uint8_t *data, size_t n)
{
    if (cfg.fail_set_input || cfg.input.bytes > sizeof input || offset > cfg.input.bytes
        || n > cfg.input.bytes - offset)
        return -1;
    memcpy(input + offset, data, n);
    return 0;
}

int espt_engine_invoke(void)
{
    invocations++;
    if (cfg.on_invoke)
        cfg.on_invoke();
    if (cfg.fail_invoke || cfg.input.bytes > sizeof input || cfg.output.bytes > sizeof output)
        return -1;
    test_engine_expected(input, cfg.input.bytes, output, cfg.output.bytes);
    return 0;
}

int espt_engine_get_output(size_t offset, uint8_t *out, size_t n)
{
    if (cfg.fail_get_output || cfg.output.bytes > sizeof output || offset > cfg.output.bytes
        || n > cfg.output.bytes - offset)
        return -1;
    memcpy(out, output + offset, n);
    return 0;
}

/* Every third step from step 1 is a fused pair (op count 2). */
void test_engine_profile_expected(uint32_t k, espt_profile_step_t *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->op_count = (uint8_t)(k % 3u == 1u ? 2u : 1u);
    rec->op_index[0] = (uint16_t)(2u * k);
    rec->op_index[1] = (uint16_t)(2u * k + 1u);
    rec->op_code[0] = (uint16_t)(k * 7u % 200u);
    rec->op_code[1] = 17u; /* MAX_POOL_2D */
    rec->counter = 1000u * (uint64_t)(k + 1u) + (uint64_t)k * k + ((uint64_t)k << 33);
    rec->arena_live_bytes = 64u * (k + 1u);
}

long espt_engine_profile_steps(void)
{
    if (cfg.profile_off)
        return -1;
    return invocations == 0 ? 0 : cfg.profile_steps;
}

int espt_engine_profile_step(uint32_t step, espt_profile_step_t *rec)
{
    if (cfg.profile_off || invocations == 0 || cfg.profile_steps < 0 || step >= (unsigned long)cfg.profile_steps)
        return -1;
    test_engine_profile_expected(step, rec);
    return 0;
}
