#include "reply_walk.h"

#include "crc32.h"
#include "protocol.h"

long walk_replies(const uint8_t *b, size_t n, reply_t *r, size_t cap, size_t *bad_offset)
{
    size_t off = 0, count = 0;
    while (off < n) {
        size_t len;
        *bad_offset = off;
        if (n - off < ESPT_FRAME_OVERHEAD || b[off] != ESPT_MAGIC0 || b[off + 1] != ESPT_MAGIC1
            || count >= cap)
            return -1;
        len = espt_get_u16(b + off + 5);
        if (len > ESPT_MAX_PAYLOAD || n - off - ESPT_FRAME_OVERHEAD < len)
            return -1;
        if (espt_get_u32(b + off + ESPT_HEADER_BYTES + len)
            != espt_crc32(b + off + 2, ESPT_HEADER_BYTES - 2 + len))
            return -1;
        r[count].type = b[off + 2];
        r[count].seq = espt_get_u16(b + off + 3);
        r[count].len = (uint16_t)len;
        r[count].payload = b + off + ESPT_HEADER_BYTES;
        count++;
        off += ESPT_FRAME_OVERHEAD + len;
    }
    *bad_offset = n;
    return (long)count;
}
