#!/usr/bin/env python3
"""Writes datasets/sample-folder/: a tiny, deliberately imbalanced image-folder dataset.

Three classes of 32x32 RGB PNGs, each a filled shape of random colour, size and position on
a plain background of another random colour: circle (200), square (60), triangle (20).
Python standard library only (PNGs written with zlib); seeded, so reruns give the same bytes.

usage: python3 scripts/make_sample_folder.py [OUTDIR]   (default: datasets/sample-folder)
"""
import os
import random
import struct
import sys
import zlib

SIZE = 32
SUPER = 4  # 4x4 supersampling per pixel for smooth edges
COUNTS = {"circle": 200, "square": 60, "triangle": 20}
SEED = 20240604


def png_bytes(width, height, rgb_rows):
    """A truecolour 8-bit PNG; every row uses the Sub filter (smaller on smooth images)."""
    raw = bytearray()
    for row in rgb_rows:
        raw.append(1)
        prev = [0, 0, 0]
        for i in range(0, len(row), 3):
            px = row[i:i + 3]
            raw.extend((px[k] - prev[k]) & 0xFF for k in range(3))
            prev = px

    def chunk(tag, data):
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
            + chunk(b"IEND", b""))


def inside(shape, x, y, cx, cy, r):
    """Whether point (x, y) lies in the shape of 'radius' r centred at (cx, cy)."""
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    if shape == "square":
        return abs(x - cx) <= r * 0.85 and abs(y - cy) <= r * 0.85
    # upward triangle with apex at the top: inside the three edge half-planes
    ax, ay = cx, cy - r
    bx, by = cx - r * 0.95, cy + r * 0.75
    qx, qy = cx + r * 0.95, cy + r * 0.75

    def side(px, py, ux, uy, vx, vy):
        return (vx - ux) * (py - uy) - (vy - uy) * (px - ux)

    s1, s2, s3 = side(x, y, ax, ay, bx, by), side(x, y, bx, by, qx, qy), side(x, y, qx, qy, ax, ay)
    return (s1 >= 0 and s2 >= 0 and s3 >= 0) or (s1 <= 0 and s2 <= 0 and s3 <= 0)


def colour(rng, lo, hi):
    return [rng.randint(lo, hi) for _ in range(3)]


def draw(rng, shape):
    bg = colour(rng, 0, 90)
    fg = colour(rng, 120, 255)
    r = rng.uniform(7.0, 13.0)
    cx = rng.uniform(r, SIZE - r)
    cy = rng.uniform(r, SIZE - r)
    rows = []
    for py in range(SIZE):
        row = []
        for px in range(SIZE):
            hits = 0
            for sy in range(SUPER):
                for sx in range(SUPER):
                    x = px + (sx + 0.5) / SUPER
                    y = py + (sy + 0.5) / SUPER
                    hits += inside(shape, x, y, cx, cy, r)
            a = hits / (SUPER * SUPER)
            row.extend(int(round(bg[k] * (1 - a) + fg[k] * a)) for k in range(3))
        rows.append(row)
    return rows


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "datasets", "sample-folder")
    rng = random.Random(SEED)
    for shape, n in COUNTS.items():
        d = os.path.join(out, shape)
        os.makedirs(d, exist_ok=True)
        for i in range(n):
            with open(os.path.join(d, "%s_%03d.png" % (shape, i)), "wb") as f:
                f.write(png_bytes(SIZE, SIZE, draw(rng, shape)))
    print("wrote %d images in %d classes to %s" % (sum(COUNTS.values()), len(COUNTS), out))


if __name__ == "__main__":
    main()
