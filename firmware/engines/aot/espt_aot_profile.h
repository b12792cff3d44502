/* The AOT engine's profile (a build with -DESPT_AOT_PROFILE): the generated model_aot.c
 * holds what each record covers and calls the marks; engine_aot.c reads the board's
 * counter at each mark and serves the records through engine.h. */
#ifndef ESPT_AOT_PROFILE_H
#define ESPT_AOT_PROFILE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint8_t op_count;          /* 1, or 2 for a fused conv + pool */
    uint16_t op_index[2];      /* TFLite operator indices (0xFFFF: unused) */
    uint16_t op_code[2];       /* their BuiltinOperator codes */
    uint32_t arena_live_bytes; /* the planner's buffers alive during the step */
} espt_aot_profile_entry_t;

/* ESPT_AOT_PROFILE_STEPS entries (model_aot.h), in the order the steps run. */
extern const espt_aot_profile_entry_t espt_aot_profile_table[];

/* The counter read before the first step, and after step k. */
void espt_aot_profile_begin(void);
void espt_aot_profile_mark(uint32_t k);

#ifdef __cplusplus
}
#endif
#endif
