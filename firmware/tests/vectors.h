/* docs/protocol-vectors.txt, read at run time (the same file feeds the Python tests). */
#ifndef ESPT_VECTORS_H
#define ESPT_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

#define VEC_MAX 64
#define VEC_NAME 64
#define VEC_BYTES 1024
#define VEC_TEXT 4096

typedef struct {
    char name[VEC_NAME];
    uint8_t type;
    uint16_t seq;
    uint8_t payload[VEC_BYTES];
    size_t payload_len;
    uint8_t frame[VEC_BYTES];
    size_t frame_len;
} frame_vector_t;

typedef struct {
    char name[VEC_NAME];
    uint16_t max_payload;
    char chunks[VEC_TEXT]; /* hex chunks joined by ','; "T" is a frame time-out */
    char events[VEC_TEXT]; /* F:TYPE:SEQ:LEN or E:CODE:SEQ joined by ';', or "-" */
} stream_vector_t;

/* A device's replies to a run of requests (docs/protocol-vectors.txt, "transfer"). */
typedef struct {
    char name[VEC_NAME];
    char steps[VEC_TEXT]; /* REQUEST>REPLY joined by ';' */
} transfer_vector_t;

/* The transfers' image: byte k of the input (0 past its 16 bytes). */
#define TRANSFER_IMAGE_BYTES 16u
#define TRANSFER_IMAGE_BYTE(k) ((uint8_t)((k) < TRANSFER_IMAGE_BYTES ? 0x10u + (k) : 0u))

typedef struct {
    frame_vector_t frames[VEC_MAX];
    size_t n_frames;
    stream_vector_t streams[VEC_MAX];
    size_t n_streams;
    transfer_vector_t transfers[VEC_MAX];
    size_t n_transfers;
} vectors_t;

/* Load the file; 0 on success, -1 (with a message on stderr) if it is missing or bad. */
int vectors_load(const char *path, vectors_t *v);

/* Decode hex ("-" is empty) into out; returns the byte count or -1. */
long hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap);

/* Walk a stream's chunks: returns 1 with *is_timeout set, or the chunk's bytes in out
 * and *n; 0 at the end; -1 on a malformed chunk. */
int stream_next_chunk(const char **cursor, uint8_t *out, size_t cap, size_t *n,
                      int *is_timeout);

/* Run a stream's CHUNKS through p, initialised with max_payload: each chunk pushed
 * `step` bytes at a time (0: whole) and drained after every push, as the device loop
 * does; a 'T' is a time-out, then a drain. The events go to out in the vectors' EVENTS
 * syntax ("-" when none). scratch holds one decoded chunk. Returns 0, or -1 when a chunk
 * is malformed or above scratch_cap bytes, out (cap bytes) is too small, or the parser
 * stops taking bytes. */
int stream_run(espt_parser_t *p, uint16_t max_payload, const char *chunks, size_t step,
               uint8_t *scratch, size_t scratch_cap, char *out, size_t cap);

/* Walk a transfer's steps: returns 1 with the request encoded as a frame in out (*n
 * bytes) and the expected reply's text in reply; 0 at the end; -1 when malformed. */
int transfer_next_step(const char **cursor, uint8_t *out, size_t cap, size_t *n, char *reply,
                       size_t reply_cap);

#endif
