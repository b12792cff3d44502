#include "reply_walk.h"

#include <stdio.h>

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

static int put_hex(char *out, size_t cap, size_t at, const uint8_t *b, size_t n)
{
    size_t i;
    if (at + 2 * n + 1 > cap)
        return -1;
    for (i = 0; i < n; i++)
        snprintf(out + at + 2 * i, 3, "%02x", b[i]);
    out[at + 2 * n] = '\0';
    return 0;
}

int format_reply(const reply_t *r, char *out, size_t cap)
{
    const uint8_t *p = r->payload;
    int k;
    if (r->type == ESPT_INPUT_ACK && r->len == ESPT_PIECE_HEAD_BYTES)
        k = snprintf(out, cap, "A:%u:%u:%lu", (unsigned)r->seq, (unsigned)espt_get_u16(p),
                     (unsigned long)espt_get_u32(p + 2));
    else if (r->type == ESPT_INFER_RSP && r->len >= ESPT_INFER_HEAD_BYTES) {
        k = snprintf(out, cap, "R:%u:", (unsigned)r->seq);
        return k < 0 || (size_t)k >= cap ? -1
            : put_hex(out, cap, (size_t)k, p + ESPT_INFER_HEAD_BYTES, r->len - ESPT_INFER_HEAD_BYTES);
    } else if (r->type == ESPT_OUTPUT_PART && r->len >= ESPT_PIECE_HEAD_BYTES) {
        k = snprintf(out, cap, "D:%u:%u:%lu:", (unsigned)r->seq, (unsigned)espt_get_u16(p),
                     (unsigned long)espt_get_u32(p + 2));
        return k < 0 || (size_t)k >= cap ? -1
            : put_hex(out, cap, (size_t)k, p + ESPT_PIECE_HEAD_BYTES, r->len - ESPT_PIECE_HEAD_BYTES);
    } else if (r->type == ESPT_ERROR && r->len >= 2)
        k = snprintf(out, cap, "E:%u:%u", (unsigned)r->seq, (unsigned)p[0]);
    else
        k = snprintf(out, cap, "?:%02x:%u", (unsigned)r->type, (unsigned)r->seq);
    return k < 0 || (size_t)k >= cap ? -1 : 0;
}
