"""CRC-32 as zlib computes it (CRC-32/ISO-HDLC): the protocol's frame check and the
identity of every model (INFO, exports, caches, the generated C)."""
import zlib


def crc32(data: bytes) -> int:
    """Poly 0xEDB88320 reflected, init and xorout 0xFFFFFFFF; crc32(b"123456789") = 0xCBF43926."""
    return zlib.crc32(data) & 0xFFFFFFFF
