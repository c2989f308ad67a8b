#!/usr/bin/env python3
"""Dev-only cross-check of our TensorBoard event files with an independent reader.

No protobuf package is installed here, so this reader re-implements, from the format
descriptions only, TFRecord framing (u64 length, masked CRC-32C of it, data, masked CRC-32C
of the data), a bitwise CRC-32C, the protobuf wire format, and the Event/Summary fields
(event.proto: wall_time=1 double, step=2 int64, file_version=3 string, summary=5;
summary.proto: value=1, Value.tag=1 string, Value.simple_value=2 float).
Prints the events as JSON. Usage: /usr/bin/python3 tb_crosscheck.py <event file>
"""
import json
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(b: bytes, i: int):
    shift = 0
    out = 0
    while True:
        x = b[i]
        i += 1
        out |= (x & 0x7F) << shift
        if not x & 0x80:
            return out, i
        shift += 7


def fields(b: bytes):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wire = key >> 3, key & 7
        if wire == 0:
            v, i = varint(b, i)
        elif wire == 1:
            v = struct.unpack_from("<d", b, i)[0]
            i += 8
        elif wire == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        elif wire == 5:
            v = struct.unpack_from("<f", b, i)[0]
            i += 4
        else:
            raise ValueError(f"wire type {wire}")
        yield f, wire, v


def main() -> None:
    data = open(sys.argv[1], "rb").read()
    i = 0
    events = []
    while i < len(data):
        (n,) = struct.unpack_from("<Q", data, i)
        (lc,) = struct.unpack_from("<I", data, i + 8)
        assert masked(data[i:i + 8]) == lc, f"length crc at {i}"
        rec = data[i + 12:i + 12 + n]
        (dc,) = struct.unpack_from("<I", data, i + 12 + n)
        assert masked(rec) == dc, f"data crc at {i}"
        i += 16 + n
        ev = {"wall_time": 0.0, "step": 0, "scalars": {}}
        for f, wire, v in fields(rec):
            if f == 1 and wire == 1:
                ev["wall_time"] = v
            elif f == 2 and wire == 0:
                ev["step"] = v
            elif f == 3 and wire == 2:
                ev["file_version"] = v.decode()
            elif f == 5 and wire == 2:
                for sf, sw, sv in fields(v):
                    if sf == 1 and sw == 2:
                        tag, val = None, None
                        for vf, vw, vv in fields(sv):
                            if vf == 1 and vw == 2:
                                tag = vv.decode()
                            elif vf == 2 and vw == 5:
                                val = vv
                        ev["scalars"][tag] = val
        events.append(ev)
    print(json.dumps(events))


if __name__ == "__main__":
    main()
