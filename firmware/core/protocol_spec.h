/* The serial protocol's constants: the one place they are written. docs/protocol.md
 * explains them; protocol.h and engine.h make C enums of these lists, and the host reads
 * this very file (host/esptiny/link/spec.py). tests/test_protocol_spec.py checks that the
 * firmware's C and the host's Python see the same values.
 *
 * Each list is X(NAME, value[, "name as printed"]). Keep one entry a line: the host
 * parses the lines. */
#ifndef ESPT_PROTOCOL_SPEC_H
#define ESPT_PROTOCOL_SPEC_H

#define ESPT_SPEC_LIMITS(X)                                                          \
    X(PROTOCOL_VERSION, 2)                                                           \
    X(MAGIC0, 0xA5)                                                                  \
    X(MAGIC1, 0x5A)                                                                  \
    X(HEADER_BYTES, 7)        /* magic, u8 type, u16 seq, u16 len */                \
    X(CRC_BYTES, 4)                                                                  \
    X(SEQ_UNKNOWN, 0xFFFF)    /* an error's seq when no header was read */          \
    X(DEFAULT_MAX_PAYLOAD, 4096)                                                     \
    X(DEFAULT_FRAME_TIMEOUT_MS, 200) /* partial frame dropped after this much quiet */ \
    X(READY_BYTES, 6)                                                                \
    X(INFER_HEAD_BYTES, 12)   /* u64 cycles, u32 microseconds */                    \
    X(ERROR_TEXT_MAX, 64)                                                            \
    X(INFO_FIXED_BYTES, 64)                                                          \
    X(INFO_STR_MAX, 63)                                                              \
    X(INFO_FLAG_PIECES, 1)    /* INFO's flags: INPUT_PART and OUTPUT_REQ are served */ \
    X(PIECE_HEAD_BYTES, 6)    /* INPUT_PART, OUTPUT_PART, INPUT_ACK: u16 tag, u32 offset */ \
    X(OUTPUT_REQ_BYTES, 8)    /* u16 tag, u32 offset, u16 len */ \
    X(PROFILE_HEAD_BYTES, 8)  /* u8 unit, u8 state, u16 steps, u16 first, u16 count */ \
    X(PROFILE_RECORD_BYTES, 22) /* u8 ops, u8 0, u16 index[2], u16 code[2], u64, u32 */ \
    X(PROFILE_OPS_MAX, 2)     /* ops one step may name (a fused conv + pool) */

/* Host -> device below 0x80, device -> host from 0x80. */
#define ESPT_SPEC_FRAME_TYPES(X) \
    X(INFO_REQ, 0x01)            \
    X(INFER_REQ, 0x02)           \
    X(PING_REQ, 0x03)            \
    X(INPUT_PART, 0x04)          \
    X(OUTPUT_REQ, 0x05)          \
    X(PROFILE_REQ, 0x10)         \
    X(READY, 0x80)               \
    X(INFO_RSP, 0x81)            \
    X(INFER_RSP, 0x82)           \
    X(PONG, 0x83)                \
    X(INPUT_ACK, 0x84)           \
    X(OUTPUT_PART, 0x85)         \
    X(PROFILE_RSP, 0x90)         \
    X(ERROR, 0xEE)

/* ERROR frames' codes. */
#define ESPT_SPEC_ERRORS(X)                      \
    X(CRC, 1, "crc")                             \
    X(OVERSIZE, 2, "oversize")                   \
    X(TRUNCATED, 3, "truncated")                 \
    X(UNKNOWN_TYPE, 4, "unknown type")           \
    X(BAD_LENGTH, 5, "bad length")               \
    X(NOT_READY, 6, "not ready")                 \
    X(INVOKE_FAILED, 7, "invoke failed")         \
    X(NO_OUTPUT, 8, "no output")

/* INFO's and READY's status: why an engine is not ready. */
#define ESPT_SPEC_STATUSES(X)                          \
    X(READY, 0, "ready")                               \
    X(ARENA_TOO_SMALL, 1, "arena too small")           \
    X(MODEL_INVALID, 2, "model invalid")               \
    X(OP_NOT_REGISTERED, 3, "op not registered")       \
    X(PREPARE_FAILED, 4, "op prepare failed")

/* INFO's engine byte. */
#define ESPT_SPEC_ENGINES(X) \
    X(TFLM, 0, "tflm")       \
    X(AOT, 1, "aot")

/* Tensor types INFO carries: TFLite's TensorType codes (its schema is the authority;
 * the host checks these against it). */
#define ESPT_SPEC_DTYPES(X)        \
    X(FLOAT32, 0, "float32")       \
    X(UINT8, 3, "uint8")           \
    X(INT16, 7, "int16")           \
    X(INT8, 9, "int8")

/* PROFILE's unit byte: what the board's counter counts (board.h). */
#define ESPT_SPEC_COUNTER_UNITS(X)          \
    X(CYCLES, 0, "cycles")                  \
    X(INSTRUCTIONS, 1, "instructions")      \
    X(NANOSECONDS, 2, "nanoseconds")

/* PROFILE's state byte: whether the records describe an inference. */
#define ESPT_SPEC_PROFILE_STATES(X)                    \
    X(RECORDED, 0, "recorded")                         \
    X(OFF, 1, "profiling not built in")                \
    X(EMPTY, 2, "no inference yet")

#endif
