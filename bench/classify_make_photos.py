#!/usr/bin/env python3
"""Make 12 MP camera-like JPEGs for the classifier benchmark (never committed).

Each eval-dev photo is upscaled to 4000x3000 (centre-cropped to 4:3), saved at quality 90
with an EXIF block like a phone's: orientation 1 and a 160x120 JPEG thumbnail.

Usage: python3 bench/classify_make_photos.py [--data ../shared/data/eval-dev] [--out DIR] [--n 40]
"""
import argparse
import io
import struct
from pathlib import Path

from PIL import Image, ImageOps


def exif_block(orientation: int, thumb: bytes) -> bytes:
    def entry(tag, typ, value):
        return struct.pack("<HHII", tag, typ, 1, value)

    tiff = b"II*\0" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + entry(0x0112, 3, orientation) + struct.pack("<I", 26)
    data_at = 26 + 2 + 2 * 12 + 4
    tiff += struct.pack("<H", 2) + entry(0x0201, 4, data_at) + entry(0x0202, 4, len(thumb)) + struct.pack("<I", 0)
    return b"Exif\0\0" + tiff + thumb


def main():
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=here.parent / "shared/data/eval-dev")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fotovakt-bench-12mp"))
    ap.add_argument("--n", type=int, default=40)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in a.data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(files) // a.n)
    for i, p in enumerate(files[::step][: a.n]):
        im = ImageOps.fit(ImageOps.exif_transpose(Image.open(p)).convert("RGB"), (4000, 3000), Image.BICUBIC)
        t = im.resize((160, 120), Image.BILINEAR)
        tb = io.BytesIO()
        t.save(tb, "JPEG", quality=75)
        im.save(a.out / f"photo{i:03d}.jpg", "JPEG", quality=90, exif=exif_block(1, tb.getvalue()))
    print(f"{a.out}: {len(list(a.out.glob('*.jpg')))} photos 4000x3000")


if __name__ == "__main__":
    main()
