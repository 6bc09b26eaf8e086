"""Writes Fashion-MNIST as a folder of PNG files in torchvision's ImageFolder layout — the shape a
practitioner's own images come in — for the README's "Your teacher and your images" example:

    OUT/train/<class>/<n>.png        the first 55,000 training images
    OUT/validation/<class>/<n>.png   the last 5,000 (kd-sweep's hold-out; the teacher never saw them)
    OUT/test/<class>/<n>.png         the 10,000 test images

Reads Debian's dataset-fashion-mnist IDX files; needs nothing beyond Python's standard library (the
PNGs are 8-bit grayscale, written with zlib).

    python3 make_folder.py [OUT] [IDX_FOLDER]
"""
import gzip
import os
import struct
import sys
import zlib

# ImageFolder numbers classes in the sorted order of their folder names: the label's digit first keeps
# Fashion-MNIST's numbering, which the teacher trained in PyTorch on the IDX files predicts. (Named
# "bag", "coat", … alone they would sort into another order, and the teacher's outputs would mean
# other classes: 35 % test accuracy instead of 88.8 %, seen.)
CLASSES = ["0-t-shirt", "1-trouser", "2-pullover", "3-dress", "4-coat", "5-sandal", "6-shirt",
           "7-sneaker", "8-bag", "9-ankle-boot"]


def idx(path):
    data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def png(w, h, pixels):
    """An 8-bit grayscale PNG of h rows of w bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\x00" + pixels[r * w:(r + 1) * w] for r in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def write(out, split, images, labels, rows):
    (_, h, w), px = images
    for k in CLASSES:
        os.makedirs(os.path.join(out, split, k), exist_ok=True)
    for n, i in enumerate(rows):
        path = os.path.join(out, split, CLASSES[labels[i]], f"{n:05d}.png")
        with open(path, "wb") as f:
            f.write(png(w, h, px[i * h * w:(i + 1) * h * w]))


def main(out, src):
    train = idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    train_y = idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))[1]
    test = idx(os.path.join(src, "t10k-images-idx3-ubyte.gz"))
    test_y = idx(os.path.join(src, "t10k-labels-idx1-ubyte.gz"))[1]
    write(out, "train", train, train_y, range(55000))
    write(out, "validation", train, train_y, range(55000, 60000))
    write(out, "test", test, test_y, range(10000))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fashion-png",
         sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist")
