"""Protobuf wire format written out by hand (tests check the decoders against bytes
built from the field numbers, not from the generated classes)."""


def varint(n: int) -> bytes:
    """Base-128 varint; a negative int32/int64 is sign-extended to ten bytes."""
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def field(number: int, wire: int, payload: bytes) -> bytes:
    return key(number, wire) + payload


def ld(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return key(number, 2) + varint(len(payload)) + payload
