/* CRC-32/ISO-HDLC, zlib's crc32(): reflected polynomial 0xEDB88320, init and xorout
 * 0xFFFFFFFF. espt_crc32("123456789", 9) == 0xCBF43926. */
#ifndef ESPT_CRC32_H
#define ESPT_CRC32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Continue a CRC over more bytes, zlib-style: start with crc = 0, pass the previous
 * result to continue. */
uint32_t espt_crc32_update(uint32_t crc, const uint8_t *data, size_t n);

uint32_t espt_crc32(const uint8_t *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
