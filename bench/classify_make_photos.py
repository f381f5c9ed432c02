#!/usr/bin/env python3
"""Make 12 MP camera-like JPEGs for the classifier benchmark (never committed).

Each eval-dev photo is upscaled to 4000x3000 (centre-cropped to 4:3), given sensor-like
noise (Gaussian, sigma 6 by default) so the file has a real 12 MP phone photo's entropy
(~4 MB at q90; an upscaled photo without noise is ~1.3 MB and unrealistically cheap to
decode), and saved at quality 90 with an EXIF block like a phone's: orientation 1 and a
160x120 JPEG thumbnail.

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
    ap.add_argument("--out", type=Path, default=Path("/tmp/fotovakt-bench-12mp-noisy"))
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--noise", type=float, default=6.0, help="sensor noise sigma in 8-bit levels (0: none)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    files = sorted(p for p in a.data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(files) // a.n)
    for i, p in enumerate(files[::step][: a.n]):
        im = ImageOps.fit(ImageOps.exif_transpose(Image.open(p)).convert("RGB"), (4000, 3000), Image.BICUBIC)
        if a.noise > 0:
            import numpy as np

            rng = np.random.default_rng(i)
            px = np.asarray(im, dtype=np.float32) + rng.normal(0.0, a.noise, (3000, 4000, 3)).astype(np.float32)
            im = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))
        t = im.resize((160, 120), Image.BILINEAR)
        tb = io.BytesIO()
        t.save(tb, "JPEG", quality=75)
        im.save(a.out / f"photo{i:03d}.jpg", "JPEG", quality=90, exif=exif_block(1, tb.getvalue()))
    print(f"{a.out}: {len(list(a.out.glob('*.jpg')))} photos 4000x3000")


if __name__ == "__main__":
    main()
