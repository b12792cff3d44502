/* Why the TFLite-Micro engine is or is not ready. engine_tflm.cc records what it saw
 * while it set the model up (arena_watch.h: every request the arena refused;
 * op_watch.h: which kernel's Init or Prepare was running, and whether a Prepare failed);
 * espt_tflm_status() turns that into INFO's status and a one-line detail.
 *
 * Plain C99 without TFLite-Micro, so firmware/tests/test_tflm_status.c checks every
 * case. The rule that matters: a request the arena refused makes the status "arena too
 * small", whatever failed afterwards, so a kernel whose Prepare failed *because* the
 * arena ran out is not reported as "op prepare failed". */
#ifndef ESPT_TFLM_STATUS_H
#define ESPT_TFLM_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The set-up step that stopped (NONE: every step passed). */
enum {
    ESPT_TFLM_STOP_NONE = 0,
    ESPT_TFLM_STOP_SCHEMA,     /* the model's schema version is `number`, TFLite-Micro reads `number2` */
    ESPT_TFLM_STOP_REGISTER,   /* the op resolver refused op.name's registration (full, or twice) */
    ESPT_TFLM_STOP_GRAPH,      /* the model has no subgraph */
    ESPT_TFLM_STOP_OPCODE,     /* op.index has an opcode the model does not define */
    ESPT_TFLM_STOP_OP_MISSING, /* op (index, name) is not in the op resolver */
    ESPT_TFLM_STOP_HEAP,       /* the heap had no block of `number` bytes for the arena */
    ESPT_TFLM_STOP_ALLOCATE,   /* AllocateTensors, or the allocator set up before it, failed */
    ESPT_TFLM_STOP_IO,         /* `number` inputs and `number2` outputs: INFO carries one of each */
    ESPT_TFLM_STOP_TENSORS     /* the planned tensors differ from model_config.h */
};

/* Where TFLite-Micro was when the arena refused a request. */
enum {
    ESPT_TFLM_PHASE_SETUP = 0, /* the allocator's own structures, before the interpreter */
    ESPT_TFLM_PHASE_MODEL,     /* AllocateTensors reading the model: tensors, nodes, op data */
    ESPT_TFLM_PHASE_INIT,      /* a kernel's Init */
    ESPT_TFLM_PHASE_PREPARE,   /* a kernel's Prepare, or the bookkeeping of its scratch requests */
    ESPT_TFLM_PHASE_PLAN       /* after the last Prepare: memory plan, scratch buffers, I/O tensors */
};

typedef struct {
    int32_t index;    /* operator position in the interpreter's order (subgraph 0 first); -1 none */
    const char *name; /* the builtin op's name (or a custom op's); NULL unknown */
} espt_tflm_op_t;

typedef struct {
    uint8_t stop;                 /* ESPT_TFLM_STOP_* */
    uint32_t number, number2;     /* the stop's figures (above) */
    espt_tflm_op_t op;            /* REGISTER, OPCODE, OP_MISSING: the op concerned */

    /* What happened inside TFLite-Micro (the hooks below fill these). */
    uint32_t ops_total;           /* operators in the model, all subgraphs */
    uint32_t inits, prepares;     /* kernel Init and Prepare calls so far */
    uint8_t phase;                /* ESPT_TFLM_PHASE_* now */
    espt_tflm_op_t current;       /* the op whose Init or Prepare ran last */
    uint32_t refusals;            /* requests the arena refused */
    uint8_t refused_phase;        /* the first refusal: where, */
    espt_tflm_op_t refused_op;    /*   in which op (INIT, PREPARE), */
    uint32_t refused_short_bytes; /*   and by how many bytes it was short (at least) */
    espt_tflm_op_t failed_prepare; /* the first kernel Prepare that returned an error; index -1 none */
} espt_tflm_setup_t;

/* Nothing observed yet: stop NONE, phase SETUP, no op. */
void espt_tflm_setup_init(espt_tflm_setup_t *s);

/* The arena refused a request `short_bytes` larger than its room (counted at least 1). */
void espt_tflm_arena_refused(espt_tflm_setup_t *s, uint32_t short_bytes);

/* A kernel's Init begins: it is op number `inits` in the interpreter's order. */
void espt_tflm_init_begins(espt_tflm_setup_t *s, const char *op_name);

/* A kernel's Prepare begins. Returns 1 to run it, 0 when the arena has already refused
 * a request: that kernel's Init may have got no memory, and its Prepare would use it. */
int espt_tflm_prepare_begins(espt_tflm_setup_t *s, const char *op_name);

/* The Prepare that began last returned (ok: its status was kTfLiteOk). */
void espt_tflm_prepare_ends(espt_tflm_setup_t *s, int ok);

/* INFO's status (ESPT_STATUS_*) for what was observed, and the detail: a printable
 * ASCII line, NUL-terminated, cut to cap - 1 bytes ("" when ready). */
uint8_t espt_tflm_status(const espt_tflm_setup_t *s, char *detail, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
