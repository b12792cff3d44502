/* INFO's status and detail from what the TFLite-Micro engine observed (tflm_status.h). */
#include "tflm_status.h"

#include <stdio.h>
#include <string.h>

#include "engine.h"

static const espt_tflm_op_t no_op = {-1, NULL};

void espt_tflm_setup_init(espt_tflm_setup_t *s)
{
    memset(s, 0, sizeof *s);
    s->stop = ESPT_TFLM_STOP_NONE;
    s->phase = ESPT_TFLM_PHASE_SETUP;
    s->op = s->current = s->refused_op = s->failed_prepare = no_op;
}

void espt_tflm_arena_refused(espt_tflm_setup_t *s, uint32_t short_bytes)
{
    if (s->refusals++ > 0)
        return; /* the first refusal is the one that says where the arena ran out */
    s->refused_phase = s->phase;
    s->refused_op = (s->phase == ESPT_TFLM_PHASE_INIT || s->phase == ESPT_TFLM_PHASE_PREPARE)
                        ? s->current : no_op;
    s->refused_short_bytes = short_bytes > 0 ? short_bytes : 1;
}

void espt_tflm_init_begins(espt_tflm_setup_t *s, const char *op_name)
{
    s->phase = ESPT_TFLM_PHASE_INIT;
    s->current.index = (int32_t)s->inits++;
    s->current.name = op_name;
}

int espt_tflm_prepare_begins(espt_tflm_setup_t *s, const char *op_name)
{
    s->phase = ESPT_TFLM_PHASE_PREPARE;
    s->current.index = (int32_t)s->prepares++;
    s->current.name = op_name;
    return s->refusals == 0;
}

void espt_tflm_prepare_ends(espt_tflm_setup_t *s, int ok)
{
    if (!ok && s->failed_prepare.index < 0)
        s->failed_prepare = s->current;
    if (ok && s->prepares >= s->ops_total)
        s->phase = ESPT_TFLM_PHASE_PLAN; /* what the arena refuses from here is the plan's */
}

/* "NAME (op N)"; the name may be unknown. */
static void op_text(char *out, size_t cap, espt_tflm_op_t op)
{
    snprintf(out, cap, "%s (op %ld)", op.name ? op.name : "an op", (long)op.index);
}

static void arena_detail(const espt_tflm_setup_t *s, char *out, size_t cap)
{
    char op[64];
    unsigned long n = (unsigned long)s->refused_short_bytes;
    op_text(op, sizeof op, s->refused_op);
    switch (s->refused_phase) {
    case ESPT_TFLM_PHASE_SETUP:
        snprintf(out, cap, "at least %lu B short for TFLite-Micro's own structures", n);
        break;
    case ESPT_TFLM_PHASE_MODEL:
        snprintf(out, cap, "at least %lu B short reading the model", n);
        break;
    case ESPT_TFLM_PHASE_INIT:
        snprintf(out, cap, "at least %lu B short in %s Init", n, op);
        break;
    case ESPT_TFLM_PHASE_PREPARE:
        snprintf(out, cap, "at least %lu B short in %s Prepare", n, op);
        break;
    default:
        snprintf(out, cap, "at least %lu B short in the memory plan", n);
        break;
    }
}

/* The detail goes over the link: printable ASCII only (a custom op's name is the
 * model's bytes). */
static void make_printable(char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7E)
            *s = '?';
}

uint8_t espt_tflm_status(const espt_tflm_setup_t *s, char *detail, size_t cap)
{
    char buf[128], op[64];
    uint8_t status = ESPT_STATUS_MODEL_INVALID;
    buf[0] = '\0';
    op_text(op, sizeof op, s->op);
    switch (s->stop) {
    case ESPT_TFLM_STOP_SCHEMA:
        snprintf(buf, sizeof buf, "schema version %lu; TFLite-Micro reads %lu",
                 (unsigned long)s->number, (unsigned long)s->number2);
        break;
    case ESPT_TFLM_STOP_REGISTER:
        status = ESPT_STATUS_OP_NOT_REGISTERED;
        snprintf(buf, sizeof buf, "%s: the op resolver refused its registration",
                 s->op.name ? s->op.name : "an op");
        break;
    case ESPT_TFLM_STOP_GRAPH:
        snprintf(buf, sizeof buf, "the model has no subgraph");
        break;
    case ESPT_TFLM_STOP_OPCODE:
        snprintf(buf, sizeof buf, "op %ld has an opcode the model does not define",
                 (long)s->op.index);
        break;
    case ESPT_TFLM_STOP_OP_MISSING:
        status = ESPT_STATUS_OP_NOT_REGISTERED;
        snprintf(buf, sizeof buf, "%s not registered", op);
        break;
    case ESPT_TFLM_STOP_HEAP:
        status = ESPT_STATUS_ARENA_TOO_SMALL;
        snprintf(buf, sizeof buf, "no %lu-byte heap block for the arena", (unsigned long)s->number);
        break;
    default:
        /* From here TFLite-Micro ran: a refused request decides, whatever it led to. */
        if (s->refusals > 0) {
            status = ESPT_STATUS_ARENA_TOO_SMALL;
            arena_detail(s, buf, sizeof buf);
        } else if (s->stop == ESPT_TFLM_STOP_NONE) {
            status = ESPT_STATUS_READY;
        } else if (s->stop == ESPT_TFLM_STOP_ALLOCATE && s->failed_prepare.index >= 0) {
            status = ESPT_STATUS_PREPARE_FAILED;
            op_text(op, sizeof op, s->failed_prepare);
            snprintf(buf, sizeof buf, "%s Prepare failed", op);
        } else if (s->stop == ESPT_TFLM_STOP_ALLOCATE) {
            snprintf(buf, sizeof buf, "AllocateTensors failed outside the kernels' Prepare");
        } else if (s->stop == ESPT_TFLM_STOP_IO) {
            snprintf(buf, sizeof buf, "%lu inputs, %lu outputs; INFO carries one of each",
                     (unsigned long)s->number, (unsigned long)s->number2);
        } else {
            snprintf(buf, sizeof buf, "planned tensors differ from model_config.h");
        }
        break;
    }
    if (detail != NULL && cap > 0) {
        size_t n = strlen(buf);
        if (n > cap - 1)
            n = cap - 1;
        memcpy(detail, buf, n);
        detail[n] = '\0';
        make_printable(detail);
    }
    return status;
}
