"""Draws the app icons (a pulse line over a rounded tile) as PNGs with only the standard library.

python3 scripts/make_icons.py www/icons
"""
import math
import os
import struct
import sys
import zlib

BG = (11, 92, 173)
FG = (255, 255, 255)


def png(path, size, maskable):
    # Maskable icons keep their content inside the central 80% safe zone and fill the corners.
    pad = 0.2 if maskable else 0.08
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            u, v = x / size, y / size
            inside = maskable or _rounded(u, v, pad)
            colour = BG if inside else (0, 0, 0)
            alpha = 255 if inside else 0
            if inside and _on_pulse(u, v, pad, size):
                colour = FG
            row += bytes(colour) + bytes([alpha])
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)))
        fh.write(chunk(b"IDAT", raw))
        fh.write(chunk(b"IEND", b""))


def _rounded(u, v, pad):
    r = 0.18
    lo, hi = pad * 0.5, 1 - pad * 0.5
    if not (lo <= u <= hi and lo <= v <= hi):
        return False
    cx = min(max(u, lo + r), hi - r)
    cy = min(max(v, lo + r), hi - r)
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r


def _pulse(t):
    # A flat line with one spike: the anomaly.
    if 0.42 < t < 0.5:
        return 0.5 - (t - 0.42) / 0.08 * 0.32
    if 0.5 <= t < 0.58:
        return 0.18 + (t - 0.5) / 0.08 * 0.5
    if 0.58 <= t < 0.64:
        return 0.68 - (t - 0.58) / 0.06 * 0.18
    return 0.5 + 0.03 * math.sin(t * 40)


def _on_pulse(u, v, pad, size):
    lo, hi = pad + 0.06, 1 - pad - 0.06
    if not lo <= u <= hi:
        return False
    t = (u - lo) / (hi - lo)
    y = lo + _pulse(t) * (hi - lo)
    width = max(2.5 / size, 0.035)
    dt = 0.004
    slope = (_pulse(min(1, t + dt)) - _pulse(max(0, t - dt))) / (2 * dt)
    return abs(v - y) <= width * math.sqrt(1 + slope * slope)


if __name__ == "__main__":
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    png(os.path.join(out, "icon-192.png"), 192, False)
    png(os.path.join(out, "icon-512.png"), 512, False)
    png(os.path.join(out, "icon-maskable-512.png"), 512, True)
