#!/usr/bin/env python3
"""Python peer for the classifier benchmark: read + Pillow decode (draft, DCT-scaled) +
centre crop/resize + onnxruntime, same model, same thread count as fotovakt.

Usage: python3 bench/classify_peer.py [--photos /tmp/fotovakt-bench-12mp-noisy] [--threads 1]
Prints one JSON line: median/mean ms per photo.
"""
import os

# ONNX Runtime 1.31+ uploads telemetry unless told not to, before it initialises; the
# agent turns it off the same way (src/classify/runtime.rs).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, default=Path("/tmp/fotovakt-bench-12mp-noisy"))
    ap.add_argument("--model", type=Path, default=HERE / "models/efficientnet_lite0.int8.onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(a.model), so, providers=["CPUExecutionProvider"])
    files = sorted(a.photos.glob("*.jpg"))
    times = []
    for r in range(a.rounds):
        for p in files:
            t = time.perf_counter()
            im = Image.open(io_bytes(p))
            im.draft("RGB", (224, 224))
            im = ImageOps.exif_transpose(im).convert("RGB")
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((224, 224), Image.BILINEAR)
            x = ((np.asarray(im, np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
            sess.run(None, {"input": x})
            if r > 0:
                times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"peer": "python Pillow(draft)+onnxruntime", "threads": a.threads, "photos": len(files),
                      "median_ms": round(statistics.median(times), 2), "mean_ms": round(statistics.mean(times), 2)}))


def io_bytes(p):
    import io
    return io.BytesIO(p.read_bytes())


if __name__ == "__main__":
    main()
