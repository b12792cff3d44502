/* engine.h over callbacks (engine_hostrt.h). */
#include "engine_hostrt.h"

#include <stdlib.h>
#include <string.h>

#include "crc32.h"

#define MODEL_MAX_BYTES (64u << 20)

static espt_hostrt_engine_t cb;
static int registered;
static uint8_t *model_copy;
static size_t model_len;

int espt_hostrt_engine(const espt_hostrt_engine_t *engine, const uint8_t *model, size_t n)
{
    uint8_t *copy;
    if (engine == NULL || engine->init == NULL || engine->set_input == NULL
        || engine->invoke == NULL || engine->get_output == NULL || model == NULL
        || n == 0 || n > MODEL_MAX_BYTES)
        return -1;
    copy = malloc(n);
    if (copy == NULL)
        return -1;
    memcpy(copy, model, n);
    free(model_copy);
    model_copy = copy;
    model_len = n;
    cb = *engine;
    registered = 1;
    return 0;
}

size_t espt_hostrt_info_size(void) { return sizeof(espt_model_info_t); }
size_t espt_hostrt_info_detail_offset(void) { return offsetof(espt_model_info_t, detail); }

/* The host runtime takes and gives whole tensors: the pieces the core hands over are
 * gathered here and the output kept after invoke (host memory; an ESP32 engine writes
 * pieces straight into its tensor). */
static uint8_t *input_buf, *output_buf;
static size_t input_len, output_len;

static int reserve(uint8_t **buf, size_t *len, size_t n)
{
    uint8_t *p = realloc(*buf, n ? n : 1);
    if (p == NULL)
        return -1;
    *buf = p;
    *len = n;
    return 0;
}

int espt_engine_init(espt_model_info_t *info)
{
    info->engine = ESPT_ENGINE_TFLM;
    if (!registered) {
        info->status = ESPT_STATUS_MODEL_INVALID;
        return info->status;
    }
    info->model_crc32 = espt_crc32(model_copy, model_len);
    info->model_bytes = (uint32_t)model_len;
    info->status = (uint8_t)cb.init(info);
    info->engine = ESPT_ENGINE_TFLM; /* whatever the callback wrote */
    info->detail[sizeof info->detail - 1] = '\0';
    if (info->status == ESPT_STATUS_READY
        && (reserve(&input_buf, &input_len, info->input.bytes) != 0
            || reserve(&output_buf, &output_len, info->output.bytes) != 0))
        info->status = ESPT_STATUS_ARENA_TOO_SMALL;
    return info->status;
}

int espt_engine_set_input(size_t offset, const uint8_t *data, size_t n)
{
    if (!registered || offset > input_len || n > input_len - offset)
        return -1;
    memcpy(input_buf + offset, data, n);
    return 0;
}

int espt_engine_invoke(void)
{
    if (!registered || cb.set_input(input_buf, input_len) != 0 || cb.invoke() != 0)
        return -1;
    return cb.get_output(output_buf, output_len);
}

int espt_engine_get_output(size_t offset, uint8_t *out, size_t n)
{
    if (!registered || offset > output_len || n > output_len - offset)
        return -1;
    memcpy(out, output_buf + offset, n);
    return 0;
}

/* The host runtime is not profiled step by step. */
long espt_engine_profile_steps(void) { return -1; }
int espt_engine_profile_step(uint32_t step, espt_profile_step_t *rec)
{
    (void)step;
    (void)rec;
    return -1;
}
