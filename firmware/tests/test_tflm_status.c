/* The TFLite-Micro engine's status decision (engines/tflm/tflm_status.c), case by case:
 * the sequences of hooks engine_tflm.cc, arena_watch.h and op_watch.h produce, and the
 * status and detail INFO then carries. */
#include <string.h>

#include "check.h"
#include "engine.h"
#include "tests.h"
#include "tflm_status.h"

static espt_tflm_setup_t s;
static char detail[ESPT_INFO_STR_MAX + 1];

/* A model of five operators: conv, pool, conv, reshape, fully connected. */
static const char *const ops[5] = {"CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE",
                                   "FULLY_CONNECTED"};

static void fresh(void)
{
    espt_tflm_setup_init(&s);
    s.ops_total = 5;
}

/* AllocateTensors' kernel calls: every Init, then Prepare up to op `last` (its status
 * `last_ok`; TFLite-Micro stops at a failed Prepare). Returns how many Prepares the hook
 * let run. */
static int run_kernels(int last, int last_ok)
{
    int i, ran = 0;
    s.phase = ESPT_TFLM_PHASE_MODEL;
    for (i = 0; i < 5; i++)
        espt_tflm_init_begins(&s, ops[i]);
    for (i = 0; i <= last; i++) {
        int ok = i < last || last_ok;
        if (espt_tflm_prepare_begins(&s, ops[i]))
            ran++;
        else
            ok = 0; /* skipped: TFLite-Micro sees kTfLiteError */
        espt_tflm_prepare_ends(&s, ok);
        if (!ok)
            break;
    }
    return ran;
}

static int expect(uint8_t status, const char *text)
{
    memset(detail, '#', sizeof detail);
    return CHECK_EQ(espt_tflm_status(&s, detail, sizeof detail), status) && CHECK_STR(detail, text);
}

static void test_ready(void)
{
    fresh();
    CHECK_EQ(run_kernels(4, 1), 5);
    CHECK_EQ(s.phase, ESPT_TFLM_PHASE_PLAN);
    expect(ESPT_STATUS_READY, "");
}

static void test_schema(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_SCHEMA;
    s.number = 2;
    s.number2 = 3;
    expect(ESPT_STATUS_MODEL_INVALID, "schema version 2; TFLite-Micro reads 3");
}

static void test_registration_refused(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_REGISTER;
    s.op.name = "RESHAPE";
    expect(ESPT_STATUS_OP_NOT_REGISTERED, "RESHAPE: the op resolver refused its registration");
}

static void test_no_graph(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_GRAPH;
    expect(ESPT_STATUS_MODEL_INVALID, "the model has no subgraph");
}

static void test_bad_opcode(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_OPCODE;
    s.op.index = 4;
    expect(ESPT_STATUS_MODEL_INVALID, "op 4 has an opcode the model does not define");
}

static void test_op_missing(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_OP_MISSING;
    s.op.index = 3;
    s.op.name = "RESHAPE";
    expect(ESPT_STATUS_OP_NOT_REGISTERED, "RESHAPE (op 3) not registered");
}

static void test_no_heap(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_HEAP;
    s.number = 20192;
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "no 20192-byte heap block for the arena");
}

/* The allocator's own structures did not fit (an arena of 64 B): no interpreter. */
static void test_arena_setup(void)
{
    fresh();
    espt_tflm_arena_refused(&s, 8);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 8 B short for TFLite-Micro's own structures");
}

static void test_arena_reading_model(void)
{
    fresh();
    s.phase = ESPT_TFLM_PHASE_MODEL;
    espt_tflm_arena_refused(&s, 200);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 200 B short reading the model");
}

/* A kernel's Init got no memory: no Prepare may run after that (it would use the
 * missing op data), and the Prepare that TFLite-Micro then sees fail is the arena's. */
static void test_arena_in_init_skips_prepare(void)
{
    int i;
    fresh();
    s.phase = ESPT_TFLM_PHASE_MODEL;
    for (i = 0; i < 5; i++) {
        espt_tflm_init_begins(&s, ops[i]);
        if (i == 2)
            espt_tflm_arena_refused(&s, 40);
    }
    CHECK_EQ(espt_tflm_prepare_begins(&s, ops[0]), 0);
    espt_tflm_prepare_ends(&s, 0);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    CHECK_EQ(s.failed_prepare.index, 0);
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 40 B short in CONV_2D (op 2) Init");
}

/* A Prepare that failed because the arena refused its persistent buffer. */
static void test_prepare_failed_for_arena(void)
{
    fresh();
    s.phase = ESPT_TFLM_PHASE_MODEL;
    CHECK_EQ(run_kernels(0, 1), 1);
    CHECK_EQ(espt_tflm_prepare_begins(&s, ops[1]), 1);
    espt_tflm_arena_refused(&s, 96);
    espt_tflm_prepare_ends(&s, 0);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 96 B short in MAX_POOL_2D (op 1) Prepare");
}

/* The head grows for an op's scratch requests right after its Prepare returned. */
static void test_arena_after_a_prepare(void)
{
    fresh();
    CHECK_EQ(run_kernels(2, 1), 3);
    CHECK_EQ(s.phase, ESPT_TFLM_PHASE_PREPARE);
    espt_tflm_arena_refused(&s, 16);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 16 B short in CONV_2D (op 2) Prepare");
}

static void test_prepare_failed(void)
{
    fresh();
    CHECK_EQ(run_kernels(2, 0), 3);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    CHECK_EQ(s.refusals, 0);
    expect(ESPT_STATUS_PREPARE_FAILED, "CONV_2D (op 2) Prepare failed");
}

/* Every Prepare passed; the memory plan (activations and scratch) did not fit. The
 * first refusal says where, later ones only count. */
static void test_arena_plan(void)
{
    fresh();
    CHECK_EQ(run_kernels(4, 1), 5);
    espt_tflm_arena_refused(&s, 3280);
    espt_tflm_arena_refused(&s, 12);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    CHECK_EQ(s.refusals, 2);
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 3280 B short in the memory plan");
}

static void test_allocate_failed_otherwise(void)
{
    fresh();
    CHECK_EQ(run_kernels(4, 1), 5);
    s.stop = ESPT_TFLM_STOP_ALLOCATE;
    expect(ESPT_STATUS_MODEL_INVALID, "AllocateTensors failed outside the kernels' Prepare");
}

/* A refused request is never ready, even if TFLite-Micro carried on: something runs
 * without the memory it asked for. */
static void test_refusal_tolerated_is_not_ready(void)
{
    fresh();
    CHECK_EQ(run_kernels(4, 1), 5);
    espt_tflm_arena_refused(&s, 0); /* counted at least 1 */
    expect(ESPT_STATUS_ARENA_TOO_SMALL, "at least 1 B short in the memory plan");
}

static void test_io_count(void)
{
    fresh();
    CHECK_EQ(run_kernels(4, 1), 5);
    s.stop = ESPT_TFLM_STOP_IO;
    s.number = 2;
    s.number2 = 1;
    expect(ESPT_STATUS_MODEL_INVALID, "2 inputs, 1 outputs; INFO carries one of each");
}

static void test_tensors_differ(void)
{
    fresh();
    s.stop = ESPT_TFLM_STOP_TENSORS;
    expect(ESPT_STATUS_MODEL_INVALID, "planned tensors differ from model_config.h");
}

/* The detail is cut to its buffer and printable (a custom op's name is model bytes). */
static void test_detail_bounded_and_printable(void)
{
    char small[12];
    fresh();
    s.stop = ESPT_TFLM_STOP_OP_MISSING;
    s.op.index = 7;
    s.op.name = "MY\nOP\x80";
    expect(ESPT_STATUS_OP_NOT_REGISTERED, "MY?OP? (op 7) not registered");
    memset(small, '#', sizeof small);
    CHECK_EQ(espt_tflm_status(&s, small, sizeof small), ESPT_STATUS_OP_NOT_REGISTERED);
    CHECK_STR(small, "MY?OP? (op ");
    CHECK_EQ(espt_tflm_status(&s, NULL, 0), ESPT_STATUS_OP_NOT_REGISTERED);
    s.op.name = NULL;
    expect(ESPT_STATUS_OP_NOT_REGISTERED, "an op (op 7) not registered");
}

void test_tflm_status(void)
{
    RUN(test_ready);
    RUN(test_schema);
    RUN(test_registration_refused);
    RUN(test_no_graph);
    RUN(test_bad_opcode);
    RUN(test_op_missing);
    RUN(test_no_heap);
    RUN(test_arena_setup);
    RUN(test_arena_reading_model);
    RUN(test_arena_in_init_skips_prepare);
    RUN(test_prepare_failed_for_arena);
    RUN(test_arena_after_a_prepare);
    RUN(test_prepare_failed);
    RUN(test_arena_plan);
    RUN(test_allocate_failed_otherwise);
    RUN(test_refusal_tolerated_is_not_ready);
    RUN(test_io_count);
    RUN(test_tensors_differ);
    RUN(test_detail_bounded_and_printable);
}
