/* A deterministic engine for tests, the fuzzer and the native firmware's own protocol
 * tests: output[i] = (sum of the input bytes + i) mod 256. Not a model. */
#ifndef ESPT_TEST_ENGINE_H
#define ESPT_TEST_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#define TEST_ENGINE_DESCRIPTION "esptiny test engine: out[i] = sum(in) + i"
#define TEST_ENGINE_ARENA_BYTES 1024u
#define TEST_ENGINE_ARENA_USED 512u
#define TEST_ENGINE_MAX_BYTES 262144u

typedef struct {
    uint8_t init_status;         /* what espt_engine_init reports (ESPT_STATUS_*) */
    int fail_set_input, fail_invoke, fail_get_output;
    espt_tensor_info_t input;    /* default int8 [1,4,4,1], 16 bytes */
    espt_tensor_info_t output;   /* default int8 [1,10], 10 bytes */
    void (*on_invoke)(void);     /* e.g. advance a fake clock */
    char detail[ESPT_INFO_STR_MAX + 1]; /* copied whole into info->detail (may be unterminated) */
    int profile_off;             /* built without profiling: espt_engine_profile_steps() -1 */
    long profile_steps;          /* steps each invoke records (default 3) */
} test_engine_config_t;

void test_engine_defaults(test_engine_config_t *c);
/* Applies from the next espt_engine_init. */
void test_engine_configure(const test_engine_config_t *c);
unsigned long test_engine_invocations(void);

/* The engine's function, for oracles. */
void test_engine_expected(const uint8_t *in, size_t n, uint8_t *out, size_t out_n);

/* Step k as the engine records it (the same for every invoke), for oracles. */
void test_engine_profile_expected(uint32_t k, espt_profile_step_t *rec);

/* Tensor info for a dtype and shape (bytes computed). */
espt_tensor_info_t test_engine_tensor(uint8_t dtype, uint8_t rank, uint16_t d0, uint16_t d1,
                                      uint16_t d2, uint16_t d3, float scale, int32_t zero_point);

#endif
