/* PROFILE (docs/protocol.md): the last inference step by step, as the engine recorded it
 * (engine.h) with the board's counter (board.h), paged so one reply fits a payload. */
#ifndef ESPT_PROFILE_H
#define ESPT_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* PROFILE_REQ's payload: u16 first step. */
#define ESPT_PROFILE_REQ_BYTES 2

/* Records one reply of cap payload bytes carries. */
#define ESPT_PROFILE_PER_REPLY(cap) \
    (((cap) - ESPT_PROFILE_HEAD_BYTES) / ESPT_PROFILE_RECORD_BYTES)

/* Head: u8 counter unit, u8 state, u16 steps in all, u16 first step here, u16 records here. */
size_t espt_pack_profile_head(uint8_t *out, uint8_t unit, uint8_t state, uint16_t steps,
                              uint16_t first, uint16_t count);

/* One record: u8 op count, u8 0, u16 op index[2], u16 op code[2] (0xFFFF past op count),
 * u64 counter, u32 live arena bytes. Writes ESPT_PROFILE_RECORD_BYTES. */
size_t espt_pack_profile_step(uint8_t *out, const espt_profile_step_t *rec);

/* The PROFILE_RSP payload for steps from `first` of the last inference, at most cap
 * bytes (cap >= ESPT_PROFILE_HEAD_BYTES). Returns its size. */
size_t espt_profile_reply(uint8_t *out, size_t cap, uint16_t first);

#ifdef __cplusplus
}
#endif
#endif
