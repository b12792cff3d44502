/* Prints the protocol constants as the firmware's C sees them, one "NAME value" line
 * each (names as the host's link/protocol.py has them), for tests/test_protocol_spec.py. */
#include <stdio.h>

#include "engine.h"
#include "protocol.h"

#define SHOW(name, value) printf("%s %ld\n", name, (long)(value))

int main(void)
{
    int code;
    SHOW("PROTOCOL_VERSION", ESPT_PROTOCOL_VERSION);
    SHOW("HEADER_BYTES", ESPT_HEADER_BYTES);
    SHOW("CRC_BYTES", ESPT_CRC_BYTES);
    SHOW("OVERHEAD", ESPT_FRAME_OVERHEAD);
    SHOW("SEQ_UNKNOWN", ESPT_SEQ_UNKNOWN);
    SHOW("DEFAULT_MAX_PAYLOAD", ESPT_MAX_PAYLOAD);
    SHOW("FRAME_TIMEOUT_MS", ESPT_FRAME_TIMEOUT_MS);
    SHOW("ERROR_MAX_BYTES", ESPT_ERROR_MAX_BYTES);
    SHOW("INFER_HEAD_BYTES", ESPT_INFER_HEAD_BYTES);
    SHOW("MAGIC0", ESPT_MAGIC0);
    SHOW("MAGIC1", ESPT_MAGIC1);
    SHOW("INFO_REQ", ESPT_INFO_REQ);
    SHOW("INFER_REQ", ESPT_INFER_REQ);
    SHOW("PING_REQ", ESPT_PING_REQ);
    SHOW("READY", ESPT_READY);
    SHOW("INFO_RSP", ESPT_INFO_RSP);
    SHOW("INFER_RSP", ESPT_INFER_RSP);
    SHOW("PONG", ESPT_PONG);
    SHOW("ERROR", ESPT_ERROR);
    SHOW("ERR_CRC", ESPT_ERR_CRC);
    SHOW("ERR_OVERSIZE", ESPT_ERR_OVERSIZE);
    SHOW("ERR_TRUNCATED", ESPT_ERR_TRUNCATED);
    SHOW("ERR_UNKNOWN_TYPE", ESPT_ERR_UNKNOWN_TYPE);
    SHOW("ERR_BAD_LENGTH", ESPT_ERR_BAD_LENGTH);
    SHOW("ERR_NOT_READY", ESPT_ERR_NOT_READY);
    SHOW("ERR_INVOKE_FAILED", ESPT_ERR_INVOKE_FAILED);
    SHOW("STATUS_READY", ESPT_STATUS_READY);
    SHOW("STATUS_ARENA_TOO_SMALL", ESPT_STATUS_ARENA_TOO_SMALL);
    SHOW("STATUS_MODEL_INVALID", ESPT_STATUS_MODEL_INVALID);
    SHOW("ENGINE_TFLM", ESPT_ENGINE_TFLM);
    SHOW("ENGINE_AOT", ESPT_ENGINE_AOT);
    SHOW("DTYPE_FLOAT32", ESPT_DTYPE_FLOAT32);
    SHOW("DTYPE_UINT8", ESPT_DTYPE_UINT8);
    SHOW("DTYPE_INT16", ESPT_DTYPE_INT16);
    SHOW("DTYPE_INT8", ESPT_DTYPE_INT8);
    for (code = 0; code < 256; code++) {
        const char *name = espt_error_name((unsigned char)code);
        if (name[0] && !(name[0] == 'e' && name[1] == 'r' && name[2] == 'r'))
            printf("error_name %d %s\n", code, name);
    }
    return 0;
}
