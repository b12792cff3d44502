/* PROFILE replies: the engine's records of the last inference, paged. Nothing the
 * engine says is trusted to fit: counts are clamped, unused op slots written as 0xFFFF. */
#include "profile.h"

#include "board.h"
#include "protocol.h"

typedef char espt_profile_fits_payload[
    (ESPT_MAX_PAYLOAD >= ESPT_PROFILE_HEAD_BYTES + ESPT_PROFILE_RECORD_BYTES) ? 1 : -1];

size_t espt_pack_profile_head(uint8_t *out, uint8_t unit, uint8_t state, uint16_t steps,
                              uint16_t first, uint16_t count)
{
    out[0] = unit;
    out[1] = state;
    espt_put_u16(out + 2, steps);
    espt_put_u16(out + 4, first);
    espt_put_u16(out + 6, count);
    return ESPT_PROFILE_HEAD_BYTES;
}

size_t espt_pack_profile_step(uint8_t *out, const espt_profile_step_t *rec)
{
    uint8_t ops = rec->op_count;
    int i;
    if (ops < 1)
        ops = 1;
    if (ops > ESPT_PROFILE_OPS_MAX)
        ops = ESPT_PROFILE_OPS_MAX;
    out[0] = ops;
    out[1] = 0;
    for (i = 0; i < ESPT_PROFILE_OPS_MAX; i++) {
        espt_put_u16(out + 2 + 2 * i, i < ops ? rec->op_index[i] : 0xFFFFu);
        espt_put_u16(out + 2 + 2 * ESPT_PROFILE_OPS_MAX + 2 * i, i < ops ? rec->op_code[i] : 0xFFFFu);
    }
    espt_put_u64(out + 10, rec->counter);
    espt_put_u32(out + 18, rec->arena_live_bytes);
    return ESPT_PROFILE_RECORD_BYTES;
}

size_t espt_profile_reply(uint8_t *out, size_t cap, uint16_t first)
{
    long steps = espt_engine_profile_steps();
    uint8_t state = steps < 0 ? ESPT_PROFILE_OFF : steps == 0 ? ESPT_PROFILE_EMPTY : ESPT_PROFILE_RECORDED;
    uint16_t total = (uint16_t)(steps < 0 ? 0 : steps > 0xFFFF ? 0xFFFF : steps);
    size_t room = cap < ESPT_PROFILE_HEAD_BYTES ? 0 : ESPT_PROFILE_PER_REPLY(cap);
    size_t n = 0;
    uint32_t k;
    for (k = first; k < total && n < room; k++, n++) {
        espt_profile_step_t rec;
        if (espt_engine_profile_step(k, &rec) != 0)
            break;
        espt_pack_profile_step(out + ESPT_PROFILE_HEAD_BYTES + n * ESPT_PROFILE_RECORD_BYTES, &rec);
    }
    espt_pack_profile_head(out, espt_board_counter_unit(), state, total, first, (uint16_t)n);
    return ESPT_PROFILE_HEAD_BYTES + n * ESPT_PROFILE_RECORD_BYTES;
}
