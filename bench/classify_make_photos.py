#!/usr/bin/env python3
"""Make 12 MP camera-like JPEGs for the classifier benchmark (never committed), one folder
per EXIF flavour, so every figure can say which photos it holds for.

Each eval-dev photo is upscaled to 4000x3000 (centre-cropped to 4:3), given sensor-like
noise (Gaussian, sigma 6 by default) so the file has a real 12 MP phone photo's entropy
(~4 MB at q90; an upscaled photo without noise is ~1.3 MB and unrealistically cheap to
decode), and saved at quality 90. Then, per flavour (same pixels in every flavour):

  none/      no EXIF thumbnail (orientation only), like many Android phones (the Nokia 8.3
             in exif-samples has none)
  project/   the EXIF block this script always wrote: IFD0 orientation + IFD1 160x120 thumbnail
  piexif/    EXIF written by piexif (Make/Model, an Exif IFD, IFD1 with a 160x120 thumbnail)
  exiftool/  the `none` file with a 512x384 thumbnail inserted by exiftool -ThumbnailImage
  camera/    the real camera files of ../shared/data/exif-samples, as they are (not 12 MP:
             whatever the cameras wrote)

Usage: python3 bench/classify_make_photos.py [--data ../shared/data/eval-dev] [--out DIR] [--n 20]
       [--flavours none,project,piexif,exiftool,camera]
"""
import argparse
import io
import shutil
import struct
import subprocess
from pathlib import Path

from PIL import Image, ImageOps

FLAVOURS = ["none", "project", "piexif", "exiftool", "camera"]


def exif_block(orientation: int, thumb: bytes | None) -> bytes:
    def entry(tag, typ, value):
        return struct.pack("<HHII", tag, typ, 1, value)

    tiff = b"II*\0" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + entry(0x0112, 3, orientation) + struct.pack("<I", 26 if thumb else 0)
    if thumb:
        data_at = 26 + 2 + 2 * 12 + 4
        tiff += struct.pack("<H", 2) + entry(0x0201, 4, data_at) + entry(0x0202, 4, len(thumb)) + struct.pack("<I", 0)
        tiff += thumb
    return b"Exif\0\0" + tiff


def jpeg_bytes(im, quality):
    b = io.BytesIO()
    im.save(b, "JPEG", quality=quality)
    return b.getvalue()


def main():
    here = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=here.parent / "shared/data/eval-dev")
    ap.add_argument("--samples", type=Path, default=here.parent / "shared/data/exif-samples")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fotovakt-bench-flavours"))
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--noise", type=float, default=6.0, help="sensor noise sigma in 8-bit levels (0: none)")
    ap.add_argument("--flavours", default=",".join(FLAVOURS))
    a = ap.parse_args()
    flavours = a.flavours.split(",")
    for f in flavours:
        (a.out / f).mkdir(parents=True, exist_ok=True)
    if "camera" in flavours:
        for p in sorted(a.samples.glob("*.jp*g")):
            shutil.copyfile(p, a.out / "camera" / (p.stem + ".jpg"))
    files = sorted(p for p in a.data.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    step = max(1, len(files) // a.n)
    for i, p in enumerate(files[::step][: a.n]):
        im = ImageOps.fit(ImageOps.exif_transpose(Image.open(p)).convert("RGB"), (4000, 3000), Image.BICUBIC)
        if a.noise > 0:
            import numpy as np

            rng = np.random.default_rng(i)
            px = np.asarray(im, dtype=np.float32) + rng.normal(0.0, a.noise, (3000, 4000, 3)).astype(np.float32)
            im = Image.fromarray(np.clip(px, 0, 255).astype(np.uint8))
        name = f"photo{i:03d}.jpg"
        thumb = jpeg_bytes(im.resize((160, 120), Image.BILINEAR), 75)
        if "none" in flavours or "exiftool" in flavours:
            im.save(a.out / "none" / name, "JPEG", quality=90, exif=exif_block(1, None))
        if "project" in flavours:
            im.save(a.out / "project" / name, "JPEG", quality=90, exif=exif_block(1, thumb))
        if "piexif" in flavours:
            import piexif

            exif = {
                "0th": {piexif.ImageIFD.Make: b"fotovakt-bench", piexif.ImageIFD.Model: b"piexif",
                        piexif.ImageIFD.Orientation: 1},
                "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2026:11:23 10:15:00"},
                "1st": {piexif.ImageIFD.Compression: 6},
                "thumbnail": thumb,
            }
            im.save(a.out / "piexif" / name, "JPEG", quality=90, exif=piexif.dump(exif))
        if "exiftool" in flavours:
            t = a.out / "exiftool" / (name + ".thumb")
            t.write_bytes(jpeg_bytes(im.resize((512, 384), Image.BILINEAR), 80))
            out = a.out / "exiftool" / name
            shutil.copyfile(a.out / "none" / name, out)
            subprocess.run(["exiftool", "-q", "-overwrite_original", f"-ThumbnailImage<={t}", str(out)], check=True)
            t.unlink()
    for f in flavours:
        print(f"{a.out / f}: {len(list((a.out / f).glob('*.jpg')))} photos")


if __name__ == "__main__":
    main()
