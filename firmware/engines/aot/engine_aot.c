/* The engine interface (firmware/core/engine.h) over a model compiled to C by
 * `esptiny export --engine aot` (model_aot.c / model_aot.h). Nothing to allocate and
 * nothing to parse: init only reports what the compiler planned. Input and output are int8,
 * or float32 for a float-I/O model (quantized and dequantized inside model_aot.c). */
#include <string.h>

#include "engine.h"
#include "model_aot.h"

static int profiled; /* an inference has run: the profile's records are its */

/* The generated model's I/O types are engine.h's codes for int8 or float32. */
typedef char espt_aot_io_dtypes_checked[
    ((ESPT_AOT_INPUT_DTYPE == ESPT_DTYPE_INT8 || ESPT_AOT_INPUT_DTYPE == ESPT_DTYPE_FLOAT32) &&
     (ESPT_AOT_OUTPUT_DTYPE == ESPT_DTYPE_INT8 || ESPT_AOT_OUTPUT_DTYPE == ESPT_DTYPE_FLOAT32)) ? 1 : -1];

static void fill_tensor(espt_tensor_info_t *t, uint8_t dtype, const uint16_t *dims, int rank,
                        float scale, int32_t zero_point, uint32_t bytes)
{
    int i;
    t->dtype = dtype;
    t->rank = (uint8_t)rank;
    for (i = 0; i < 4; ++i) {
        t->dims[i] = i < rank ? dims[i] : 1;
    }
    t->scale = scale;
    t->zero_point = zero_point;
    t->bytes = bytes;
}

int espt_engine_init(espt_model_info_t *info)
{
    static const uint16_t in_dims[4] = ESPT_AOT_INPUT_DIMS;
    static const uint16_t out_dims[4] = ESPT_AOT_OUTPUT_DIMS;
    memset(info, 0, sizeof(*info));
    info->status = ESPT_STATUS_READY;
    info->engine = ESPT_ENGINE_AOT;
    info->model_crc32 = ESPT_AOT_MODEL_CRC32;
    info->model_bytes = ESPT_AOT_MODEL_BYTES;
    info->arena_bytes = ESPT_AOT_ARENA_BYTES;
    info->arena_used_bytes = ESPT_AOT_ARENA_BYTES;
    fill_tensor(&info->input, ESPT_AOT_INPUT_DTYPE, in_dims, ESPT_AOT_INPUT_RANK, ESPT_AOT_INPUT_SCALE,
                ESPT_AOT_INPUT_ZERO_POINT, ESPT_AOT_INPUT_BYTES);
    fill_tensor(&info->output, ESPT_AOT_OUTPUT_DTYPE, out_dims, ESPT_AOT_OUTPUT_RANK, ESPT_AOT_OUTPUT_SCALE,
                ESPT_AOT_OUTPUT_ZERO_POINT, ESPT_AOT_OUTPUT_BYTES);
    return info->status;
}

int espt_engine_set_input(size_t offset, const uint8_t *data, size_t n)
{
    if (data == NULL || offset > ESPT_AOT_INPUT_BYTES || n > ESPT_AOT_INPUT_BYTES - offset) {
        return -1;
    }
    memcpy((uint8_t *)espt_aot_input() + offset, data, n);
    return 0;
}

int espt_engine_invoke(void)
{
    espt_aot_invoke();
    profiled = 1;
    return 0;
}

int espt_engine_get_output(size_t offset, uint8_t *out, size_t n)
{
    if (out == NULL || offset > ESPT_AOT_OUTPUT_BYTES || n > ESPT_AOT_OUTPUT_BYTES - offset) {
        return -1;
    }
    memcpy(out, (const uint8_t *)espt_aot_output() + offset, n);
    return 0;
}

/* ---- the profile ------------------------------------------------------------------ */

#ifdef ESPT_AOT_PROFILE
#include "board.h"
#include "espt_aot_profile.h"

/* The counter over each step of the last inference: consecutive reads, so the steps add
 * up to the invoke less the reads around it. */
static uint64_t step_counter[ESPT_AOT_PROFILE_STEPS];
static uint64_t last_read;

void espt_aot_profile_begin(void)
{
    last_read = espt_board_cycles();
}

void espt_aot_profile_mark(uint32_t k)
{
    uint64_t now = espt_board_cycles();
    if (k < ESPT_AOT_PROFILE_STEPS) {
        step_counter[k] = now - last_read;
    }
    last_read = now;
}

long espt_engine_profile_steps(void)
{
    return profiled ? (long)ESPT_AOT_PROFILE_STEPS : 0;
}

int espt_engine_profile_step(uint32_t step, espt_profile_step_t *rec)
{
    const espt_aot_profile_entry_t *e;
    int i;
    if (!profiled || step >= ESPT_AOT_PROFILE_STEPS || rec == NULL) {
        return -1;
    }
    e = &espt_aot_profile_table[step];
    rec->op_count = e->op_count;
    for (i = 0; i < ESPT_PROFILE_OPS_MAX; ++i) {
        rec->op_index[i] = i < 2 ? e->op_index[i] : 0xFFFFu;
        rec->op_code[i] = i < 2 ? e->op_code[i] : 0xFFFFu;
    }
    rec->counter = step_counter[step];
    rec->arena_live_bytes = e->arena_live_bytes;
    return 0;
}

#else

/* Built without profiling: nothing between the kernel calls, nothing to report. */
long espt_engine_profile_steps(void)
{
    (void)profiled;
    return -1;
}

int espt_engine_profile_step(uint32_t step, espt_profile_step_t *rec)
{
    (void)step;
    (void)rec;
    return -1;
}

#endif
