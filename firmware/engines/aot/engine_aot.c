/* The engine interface (firmware/core/engine.h) over a model compiled to C by
 * `esptiny export --engine aot` (model_aot.c / model_aot.h). Nothing to allocate and
 * nothing to parse: init only reports what the compiler planned. Input and output are int8,
 * or float32 for a float-I/O model (quantized and dequantized inside model_aot.c). */
#include <string.h>

#include "engine.h"
#include "model_aot.h"

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
