/* Split bytes a device wrote into frames without the parser (an independent check):
 * they must be exactly a run of well-formed, CRC-valid frames. */
#ifndef ESPT_REPLY_WALK_H
#define ESPT_REPLY_WALK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t type;
    uint16_t seq;
    uint16_t len;
    const uint8_t *payload; /* into the walked bytes */
} reply_t;

/* Returns the number of frames (at most cap), or -1 at the first malformed byte, with
 * *bad_offset set to where. */
long walk_replies(const uint8_t *bytes, size_t n, reply_t *r, size_t cap, size_t *bad_offset);

/* A reply in the transfer vectors' syntax: A:SEQ:TAG:HAVE, R:SEQ:OUTPUT_HEX,
 * D:SEQ:TAG:OFFSET:HEX, E:SEQ:CODE, or ?:TYPE:SEQ for any other frame. 0, or -1 if
 * it does not fit cap bytes. */
int format_reply(const reply_t *r, char *out, size_t cap);

#endif
