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
    return info->status;
}

int espt_engine_set_input(const uint8_t *data, size_t n) { return registered ? cb.set_input(data, n) : -1; }
int espt_engine_invoke(void) { return registered ? cb.invoke() : -1; }
int espt_engine_get_output(uint8_t *out, size_t n) { return registered ? cb.get_output(out, n) : -1; }
