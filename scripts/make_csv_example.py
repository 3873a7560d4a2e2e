#!/usr/bin/env python3
"""Writes a small CSV-labelled image dataset in the Kaggle layout, made from Fashion-MNIST, for
the worked example of docs/data.md ("Your own data, worked through").

OUTDIR/labels.csv lists OUTDIR/images/*.png with three columns: image, label, fold.
  - two classes, imbalanced: 600 "Sneaker" and 60 "Ankle boot" images of Fashion-MNIST's
    training set (labels 7 and 9), in that file's order;
  - mixed sizes and modes, as collected data tends to be: every third image is written as a
    32x32 RGB PNG (the 28x28 picture upscaled by nearest neighbour and tinted), the rest as
    28x28 gray PNGs;
  - a fold column: per class, the first 70% "train", the next 10% "val", the last 20% "test";
  - two bad rows on purpose: one names a file that does not exist, one a file that is not an
    image (a text file named .png).
Python standard library only (the IDX files read with gzip, the PNGs written with zlib);
deterministic, so reruns give the same bytes.

usage: python3 scripts/make_csv_example.py [OUTDIR] [FMNIST_DIR]
       (defaults: shoes, /usr/share/datasets/fashion-mnist)
"""
import gzip
import os
import struct
import sys
import zlib

CLASSES = {7: ("Sneaker", 600), 9: ("Ankle boot", 60)}
FOLDS = ((0.7, "train"), (0.8, "val"), (1.01, "test"))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def png(width, height, channels, rows):
    """An 8-bit gray (channels 1) or RGB (3) PNG, no filtering."""
    raw = b"".join(b"\x00" + bytes(r) for r in rows)

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    colour_type = 0 if channels == 1 else 2
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def gray_rows(pixels):
    return [pixels[y * 28:(y + 1) * 28] for y in range(28)]


def rgb_rows(pixels, tint):
    """32x32: nearest-neighbour upscale of the 28x28 picture, tinted."""
    rows = []
    for y in range(32):
        sy = y * 28 // 32
        row = []
        for x in range(32):
            v = pixels[sy * 28 + x * 28 // 32]
            row += [v * tint[0] // 255, v * tint[1] // 255, v * tint[2] // 255]
        rows.append(row)
    return rows


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "shoes"
    fm = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    (n, h, w), pixels = read_idx(os.path.join(fm, "train-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(fm, "train-labels-idx1-ubyte.gz"))
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    lines = ["image,label,fold"]
    for label, (name, want) in CLASSES.items():
        picked = [i for i in range(n) if labels[i] == label][:want]
        for k, i in enumerate(picked):
            img = pixels[i * h * w:(i + 1) * h * w]
            fname = "%s_%05d.png" % (name.replace(" ", "_").lower(), i)
            if k % 3 == 0:
                data = png(32, 32, 3, rgb_rows(img, (255, 200 + k % 56, 150 + k % 106)))
            else:
                data = png(28, 28, 1, gray_rows(img))
            with open(os.path.join(out, "images", fname), "wb") as f:
                f.write(data)
            fold = next(tag for limit, tag in FOLDS if k < limit * want)
            lines.append("%s,%s,%s" % (fname, name, fold))
    with open(os.path.join(out, "images", "notes.png"), "w") as f:
        f.write("this is not an image\n")
    lines.append("sneaker_missing.png,Sneaker,train")
    lines.append("notes.png,Ankle boot,train")
    with open(os.path.join(out, "labels.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s/labels.csv: %d rows, images in %s/images" % (out, len(lines) - 1, out))


if __name__ == "__main__":
    main()
