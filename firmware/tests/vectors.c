#include "vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap)
{
    size_t i;
    if (hex_len == 1 && hex[0] == '-')
        return 0;
    if (hex_len % 2 || hex_len / 2 > cap)
        return -1;
    for (i = 0; i < hex_len; i += 2) {
        int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(hex_len / 2);
}

static int copy_field(char *dst, size_t cap, const char *src)
{
    if (strlen(src) + 1 > cap)
        return -1;
    strcpy(dst, src);
    return 0;
}

static int parse_frame(char **f, frame_vector_t *v)
{
    long n;
    if (copy_field(v->name, sizeof v->name, f[1]))
        return -1;
    v->type = (uint8_t)strtoul(f[2], NULL, 16);
    v->seq = (uint16_t)strtoul(f[3], NULL, 10);
    if ((n = hex_decode(f[4], strlen(f[4]), v->payload, sizeof v->payload)) < 0)
        return -1;
    v->payload_len = (size_t)n;
    if ((n = hex_decode(f[5], strlen(f[5]), v->frame, sizeof v->frame)) < 0)
        return -1;
    v->frame_len = (size_t)n;
    return 0;
}

static int parse_stream(char **f, stream_vector_t *v)
{
    v->max_payload = (uint16_t)strtoul(f[2], NULL, 10);
    return copy_field(v->name, sizeof v->name, f[1]) || copy_field(v->chunks, sizeof v->chunks, f[3])
        || copy_field(v->events, sizeof v->events, f[4]) ? -1 : 0;
}

static int parse_transfer(char **f, transfer_vector_t *v)
{
    return copy_field(v->name, sizeof v->name, f[1]) || copy_field(v->steps, sizeof v->steps, f[2])
        ? -1 : 0;
}

int vectors_load(const char *path, vectors_t *v)
{
    static char line[4 * VEC_TEXT];
    int lineno = 0;
    FILE *fp = fopen(path, "r");
    memset(v, 0, sizeof *v);
    if (!fp) {
        fprintf(stderr, "cannot open vectors %s\n", path);
        return -1;
    }
    while (fgets(line, sizeof line, fp)) {
        char *f[8];
        int nf = 0;
        char *tok = strtok(line, " \t\r\n");
        lineno++;
        while (tok && nf < 8) {
            f[nf++] = tok;
            tok = strtok(NULL, " \t\r\n");
        }
        if (nf == 0 || f[0][0] == '#')
            continue;
        if (!strcmp(f[0], "frame") && nf == 6 && v->n_frames < VEC_MAX) {
            if (parse_frame(f, &v->frames[v->n_frames++]) == 0)
                continue;
        } else if (!strcmp(f[0], "stream") && nf == 5 && v->n_streams < VEC_MAX) {
            if (parse_stream(f, &v->streams[v->n_streams++]) == 0)
                continue;
        } else if (!strcmp(f[0], "transfer") && nf == 3 && v->n_transfers < VEC_MAX) {
            if (parse_transfer(f, &v->transfers[v->n_transfers++]) == 0)
                continue;
        }
        fprintf(stderr, "%s:%d: malformed vector\n", path, lineno);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    return 0;
}

int stream_next_chunk(const char **cursor, uint8_t *out, size_t cap, size_t *n, int *is_timeout)
{
    const char *s = *cursor, *end;
    long got;
    if (*s == '\0')
        return 0;
    end = strchr(s, ',');
    if (!end)
        end = s + strlen(s);
    *cursor = *end ? end + 1 : end;
    *is_timeout = end - s == 1 && *s == 'T';
    *n = 0;
    if (*is_timeout)
        return 1;
    got = hex_decode(s, (size_t)(end - s), out, cap);
    if (got < 0)
        return -1;
    *n = (size_t)got;
    return 1;
}

/* ---- events as the vectors spell them ------------------------------------------- */

typedef struct {
    char *s;
    size_t n, cap;
    int overflow;
} events_out_t;

static void record(events_out_t *e, const espt_event_t *ev)
{
    size_t room = e->cap - e->n;
    int k = ev->kind == ESPT_EVENT_FRAME
        ? snprintf(e->s + e->n, room, "%sF:%02x:%u:%u", e->n ? ";" : "", ev->type,
                   (unsigned)ev->seq, (unsigned)ev->len)
        : snprintf(e->s + e->n, room, "%sE:%u:%u", e->n ? ";" : "", (unsigned)ev->code,
                   (unsigned)ev->seq);
    if (k < 0 || (size_t)k >= room) {
        e->overflow = 1;
        e->s[e->n] = '\0';
        return;
    }
    e->n += (size_t)k;
}

static void drain(espt_parser_t *p, events_out_t *e)
{
    espt_event_t ev;
    while (espt_parser_next(p, &ev))
        record(e, &ev);
}

int stream_run(espt_parser_t *p, uint16_t max_payload, const char *chunks, size_t step,
               uint8_t *scratch, size_t scratch_cap, char *out, size_t cap)
{
    events_out_t e;
    const char *cursor = chunks;
    size_t n;
    int is_timeout, rc;
    espt_event_t ev;

    if (cap < 2)
        return -1;
    e.s = out;
    e.n = 0;
    e.cap = cap;
    e.overflow = 0;
    out[0] = '\0';
    espt_parser_init(p, max_payload);
    while ((rc = stream_next_chunk(&cursor, scratch, scratch_cap, &n, &is_timeout)) == 1) {
        const uint8_t *data = scratch;
        if (is_timeout) {
            if (espt_parser_timeout(p, &ev))
                record(&e, &ev);
            drain(p, &e);
        }
        while (n > 0) {
            size_t k = espt_parser_push(p, data, step && step < n ? step : n);
            if (k == 0)
                return -1;
            data += k;
            n -= k;
            drain(p, &e);
        }
    }
    if (rc != 0 || e.overflow)
        return -1;
    if (e.n == 0)
        strcpy(out, "-");
    return 0;
}

/* ---- transfers ---------------------------------------------------------------------- */

/* "P:SEQ:TAG:OFFSET:LEN", "O:SEQ:TAG:OFFSET:LEN" or "I:SEQ" -> a request frame. */
static int transfer_request(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    static uint8_t payload[ESPT_PIECE_HEAD_BYTES + 0x10000];
    unsigned long f[4] = {0, 0, 0, 0};
    char kind;
    int got;
    size_t i, len = 0;
    uint8_t type;
    got = sscanf(s, "%c:%lu:%lu:%lu:%lu", &kind, &f[0], &f[1], &f[2], &f[3]);
    if (kind == 'I' && got == 2) {
        type = ESPT_INFER_REQ;
        for (i = 0; i < TRANSFER_IMAGE_BYTES; i++)
            payload[len++] = TRANSFER_IMAGE_BYTE(i);
    } else if ((kind == 'P' || kind == 'O') && got == 5 && f[3] <= 0xFFFFu) {
        espt_put_u16(payload, (uint16_t)f[1]);
        espt_put_u32(payload + 2, (uint32_t)f[2]);
        len = ESPT_PIECE_HEAD_BYTES;
        if (kind == 'O') {
            type = ESPT_OUTPUT_REQ;
            espt_put_u16(payload + len, (uint16_t)f[3]);
            len += 2;
        } else {
            type = ESPT_INPUT_PART;
            for (i = 0; i < f[3]; i++)
                payload[len++] = TRANSFER_IMAGE_BYTE(f[2] + i);
        }
    } else {
        return -1;
    }
    if (f[0] > 0xFFFFu)
        return -1;
    *n = espt_frame_encode(out, cap, type, (uint16_t)f[0], payload, len);
    return *n > 0 ? 0 : -1;
}

int transfer_next_step(const char **cursor, uint8_t *out, size_t cap, size_t *n, char *reply,
                       size_t reply_cap)
{
    char req[128];
    const char *s = *cursor, *end, *gt;
    if (*s == '\0')
        return 0;
    end = strchr(s, ';');
    if (!end)
        end = s + strlen(s);
    gt = memchr(s, '>', (size_t)(end - s));
    if (!gt || (size_t)(gt - s) >= sizeof req || (size_t)(end - gt) > reply_cap)
        return -1;
    memcpy(req, s, (size_t)(gt - s));
    req[gt - s] = '\0';
    memcpy(reply, gt + 1, (size_t)(end - gt - 1));
    reply[end - gt - 1] = '\0';
    *cursor = *end ? end + 1 : end;
    return transfer_request(req, out, cap, n) == 0 ? 1 : -1;
}
