#!/usr/bin/env python3
"""Make the EXIF-writer fixtures in this folder (small generated pictures, nothing from
shared/data): the EXIF blocks piexif and exiftool write, which strict readers refuse.

    python3 -m pip install piexif; apt-get install libimage-exiftool-perl
    python3 tests/data/exif-writers/make.py

Each file's thumbnail, as exiftool extracts it, is saved beside it as NAME.thumb (the
test compares the range the agent finds with those bytes).
"""
import io
import shutil
import subprocess
from pathlib import Path

import piexif
from PIL import Image

HERE = Path(__file__).resolve().parent


def picture(w, h, seed):
    im = Image.new("RGB", (w, h))
    im.putdata([((x * 255 // w + seed) % 256, (y * 255 // h + seed) % 256, 128) for y in range(h) for x in range(w)])
    return im


def jpeg(im, q=85, **kw):
    b = io.BytesIO()
    im.save(b, "JPEG", quality=q, **kw)
    return b.getvalue()


def main():
    big = picture(320, 240, 1)
    thumb = jpeg(big.resize((160, 120)), 75)
    # piexif: Make/Model, Exif IFD (with a next-IFD link), GPS, IFD1 with the thumbnail
    exif = {
        "0th": {piexif.ImageIFD.Make: b"fotovakt", piexif.ImageIFD.Model: b"piexif", piexif.ImageIFD.Orientation: 6},
        "Exif": {piexif.ExifIFD.DateTimeOriginal: b"2026:11:23 10:15:00"},
        "GPS": {piexif.GPSIFD.GPSLatitudeRef: b"N", piexif.GPSIFD.GPSLatitude: ((52, 1), (22, 1), (1234, 100)),
                piexif.GPSIFD.GPSLongitudeRef: b"E", piexif.GPSIFD.GPSLongitude: ((4, 1), (53, 1), (0, 1))},
        "1st": {piexif.ImageIFD.Compression: 6},
        "thumbnail": thumb,
    }
    (HERE / "piexif.jpg").write_bytes(jpeg(big, exif=piexif.dump(exif)))
    # piexif without a thumbnail (IFD1 absent)
    del exif["1st"], exif["thumbnail"]
    (HERE / "piexif-nothumb.jpg").write_bytes(jpeg(picture(320, 240, 2), exif=piexif.dump(exif)))
    # exiftool: a plain JPEG, then a 256x192 thumbnail and tags inserted by exiftool
    plain = HERE / "exiftool.jpg"
    plain.write_bytes(jpeg(picture(320, 240, 3)))
    t = HERE / "tmp-thumb.jpg"
    t.write_bytes(jpeg(picture(320, 240, 3).resize((200, 150)), 80))
    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-ThumbnailImage<={t}", "-Orientation#=3",
                    "-DateTimeOriginal=2026:11:24 08:00:00", str(plain)], check=True)
    t.unlink()
    # exiftool rewriting a piexif file (keeps the thumbnail, rewrites the IFDs)
    shutil.copyfile(HERE / "piexif.jpg", HERE / "piexif-exiftool.jpg")
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-Artist=fotovakt", str(HERE / "piexif-exiftool.jpg")],
                   check=True)
    for p in sorted(HERE.glob("*.jpg")):
        data = subprocess.run(["exiftool", "-b", "-ThumbnailImage", str(p)], capture_output=True, check=True).stdout
        thumb_file = p.with_suffix(".thumb")
        if data:
            thumb_file.write_bytes(data)
        elif thumb_file.exists():
            thumb_file.unlink()
        print(p.name, p.stat().st_size, "thumbnail", len(data))


if __name__ == "__main__":
    main()
