/* CRC-32 with a 16-entry table (four bits at a time): 64 bytes of constants instead of
 * 1 KiB, fast enough for frames of a few KiB on a microcontroller. */
#include "crc32.h"

static const uint32_t nibble_table[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu,
    0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
    0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
    0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu,
};

uint32_t espt_crc32_update(uint32_t crc, const uint8_t *data, size_t n)
{
    size_t i;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ nibble_table[crc & 0x0fu];
        crc = (crc >> 4) ^ nibble_table[crc & 0x0fu];
    }
    return ~crc;
}

uint32_t espt_crc32(const uint8_t *data, size_t n)
{
    return espt_crc32_update(0u, data, n);
}
