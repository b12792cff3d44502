/* Seed corpus for fuzz_device in its input format (see fuzz_device.c): every vector of
 * docs/protocol-vectors.txt as a raw link (0xFE escaped, the vectors' time-outs as
 * gaps) under a few configurations, and record-mode inputs with the requests the
 * vectors do not cover. Usage: make_seeds VECTORS OUT_DIR */
#include <stdio.h>
#include <string.h>

#include "protocol.h"
#include "vectors.h"

static vectors_t vec;
static uint8_t seed[64 * 1024];
static size_t seed_len;
static unsigned seeds_written;

static int raw_mode;

static void put(uint8_t b)
{
    if (seed_len + 2 > sizeof seed)
        return;
    if (raw_mode && b == 0xFE)
        seed[seed_len++] = 0xFE; /* escaped */
    seed[seed_len++] = b;
}

static void put_bytes(const uint8_t *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        put(b[i]);
}

static void put_gap(void)
{
    seed[seed_len++] = raw_mode ? 0xFE : 0x03;
    if (raw_mode)
        seed[seed_len++] = 0x00;
}

/* A record: op 0 (frame) or 1 (frame with a bad CRC); `given` payload bytes follow,
 * the fuzz target pads the rest of len with zeros. */
static void put_record(uint8_t op, uint8_t type, uint16_t seq, uint16_t len,
                       const uint8_t *payload, size_t given)
{
    uint8_t head[6];
    head[0] = op;
    head[1] = type;
    espt_put_u16(head + 2, seq);
    espt_put_u16(head + 4, len);
    put_bytes(head, sizeof head);
    put_bytes(payload, given);
}

static void begin_mode(uint8_t config, int raw, uint8_t profile)
{
    raw_mode = raw;
    seed_len = 0;
    seed[seed_len++] = config;
    seed[seed_len++] = (uint8_t)((raw ? 0x00 : 0x01) | (profile << 1));
}

static void begin(uint8_t config, int raw)
{
    begin_mode(config, raw, 0);
}

static int write_seed(const char *dir, const char *name)
{
    char path[512];
    FILE *fp;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp || fwrite(seed, 1, seed_len, fp) != seed_len || fclose(fp) != 0) {
        fprintf(stderr, "make_seeds: cannot write %s\n", path);
        return -1;
    }
    seeds_written++;
    return 0;
}

int main(int argc, char **argv)
{
    static const uint8_t configs[] = {0x00, 0x10, 0x30, 0x61};
    static const uint8_t engine_configs[] = {0x00, 0x01, 0x02, 0x04, 0x08, 0x80, 0x40};
    static uint8_t chunk[VEC_TEXT];
    static const uint8_t partial[] = {0xA5, 0x5A, 0x02, 0x09, 0x00};
    size_t i, k, n;
    char name[128];
    int rc = 0, is_timeout;

    if (argc != 3) {
        fprintf(stderr, "usage: %s VECTORS OUT_DIR\n", argv[0]);
        return 2;
    }
    if (vectors_load(argv[1], &vec) != 0)
        return 1;
    for (i = 0; i < vec.n_frames; i++) {
        begin(0, 1);
        put_bytes(vec.frames[i].frame, vec.frames[i].frame_len);
        snprintf(name, sizeof name, "frame-%s", vec.frames[i].name);
        rc |= write_seed(argv[2], name);
    }
    for (i = 0; i < vec.n_streams; i++) {
        for (k = 0; k < sizeof configs; k++) {
            const char *cursor = vec.streams[i].chunks;
            begin(configs[k], 1);
            while (stream_next_chunk(&cursor, chunk, sizeof chunk, &n, &is_timeout) == 1) {
                if (is_timeout)
                    put_gap();
                else
                    put_bytes(chunk, n);
            }
            snprintf(name, sizeof name, "stream-%s-%02x", vec.streams[i].name, configs[k]);
            rc |= write_seed(argv[2], name);
        }
    }
    /* Transfers: each vector's requests as well-formed frames, under each engine config. */
    for (i = 0; i < vec.n_transfers; i++) {
        for (k = 0; k < sizeof engine_configs; k++) {
            const char *cursor = vec.transfers[i].steps;
            char reply[512];
            begin(engine_configs[k], 1);
            while (transfer_next_step(&cursor, chunk, sizeof chunk, &n, reply, sizeof reply) == 1)
                put_bytes(chunk, n);
            snprintf(name, sizeof name, "transfer-%s-%02x", vec.transfers[i].name, engine_configs[k]);
            rc |= write_seed(argv[2], name);
        }
    }
    /* Records: every request type, right and wrong, under each engine failure. */
    for (i = 0; i < 16; i++)
        chunk[i] = (uint8_t)(i * 17);
    for (k = 0; k < sizeof engine_configs; k++) {
        begin(engine_configs[k], 0);
        put_record(0, 0x01, 1, 0, NULL, 0);              /* INFO_REQ */
        put_record(0, 0x02, 2, 16, chunk, 16);           /* INFER_REQ, right size */
        put_record(0, 0x02, 3, 15, chunk, 15);           /* INFER_REQ, wrong size */
        put_record(0, 0x03, 4, 16, chunk, 16);           /* PING_REQ */
        put_record(0, 0x7F, 5, 0, NULL, 0);              /* unknown type */
        put_record(0, 0x04, 9, 10, chunk, 10);           /* INPUT_PART, tag/offset 0, 4 bytes */
        put_record(0, 0x05, 10, 8, chunk, 8);            /* OUTPUT_REQ */
        put_record(1, 0x03, 6, 5, chunk, 5);             /* bad CRC */
        put_record(0, 0x03, 7, ESPT_MAX_PAYLOAD + 1, NULL, 0); /* oversize */
        seed[seed_len++] = 0x02;                         /* raw: a partial header */
        seed[seed_len++] = (uint8_t)sizeof partial;
        put_bytes(partial, sizeof partial);
        put_gap();
        put_record(0, 0x03, 8, ESPT_MAX_PAYLOAD, NULL, 0); /* largest PING */
        snprintf(name, sizeof name, "records-%02x", engine_configs[k]);
        rc |= write_seed(argv[2], name);
    }
    /* PROFILE before and after an inference, paged, under each profile configuration. */
    for (k = 0; k < 4; k++) {
        static const uint8_t pages[][2] = {{0, 0}, {2, 0}, {185, 0}, {0x72, 0x01}, {0xFF, 0xFF}};
        begin_mode(0x00, 0, (uint8_t)k);
        put_record(0, 0x10, 1, 2, pages[0], 2);          /* PROFILE_REQ before any INFER */
        put_record(0, 0x02, 2, 16, chunk, 16);
        for (i = 0; i < sizeof pages / sizeof pages[0]; i++)
            put_record(0, 0x10, (uint16_t)(3 + i), 2, pages[i], 2);
        put_record(0, 0x10, 9, 3, chunk, 3);             /* wrong length */
        snprintf(name, sizeof name, "profile-%u", (unsigned)k);
        rc |= write_seed(argv[2], name);
    }
    printf("make_seeds: %u seeds in %s\n", seeds_written, argv[2]);
    return rc ? 1 : 0;
}
