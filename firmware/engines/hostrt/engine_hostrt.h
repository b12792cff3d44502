/* The host-runtime engine: engine.h's calls reach an inference runtime in the host
 * process (TFLite-Micro's Python host runtime, host/esptiny/devices/hostrt.py) through
 * callbacks. The C keeps the model bytes and fills what it can know itself (engine,
 * CRC32, size); the callback fills status, arena, tensors and detail. */
#ifndef ESPT_ENGINE_HOSTRT_H
#define ESPT_ENGINE_HOSTRT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int (*init)(espt_model_info_t *info); /* returns info->status */
    int (*set_input)(const uint8_t *data, size_t n);
    int (*invoke)(void);
    int (*get_output)(uint8_t *out, size_t n);
} espt_hostrt_engine_t;

/* Register the callbacks and the model (its bytes are copied; at most 64 MiB). 0 on
 * success. Without a registered engine, init reports MODEL_INVALID. */
int espt_hostrt_engine(const espt_hostrt_engine_t *engine, const uint8_t *model, size_t n);

/* sizeof(espt_model_info_t) and offsetof its detail: the host checks its mirror of the
 * struct against these before it registers anything. */
size_t espt_hostrt_info_size(void);
size_t espt_hostrt_info_detail_offset(void);

#ifdef __cplusplus
}
#endif
#endif
