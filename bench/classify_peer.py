#!/usr/bin/env python3
"""Python peer for the classifier benchmark: read + Pillow decode (draft, DCT-scaled) +
centre crop/resize + onnxruntime, same model, same thread count as fotovakt.

Usage: python3 bench/classify_peer.py [--photos DIR] [--threads 1]
         prints one JSON line: median/mean ms per photo.
       python3 bench/classify_peer.py --serve [--threads 1]
         reads one photo path a line on stdin, answers the ms it took (or "error ...") a line:
         `cargo bench --bench classify` drives it so peer and fotovakt alternate photo by
         photo in one run, on the same core.
"""
import os

# ONNX Runtime 1.31+ uploads telemetry unless told not to, before it initialises; the
# agent turns it off the same way (src/classify/runtime.rs).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent.parent


def classify(sess, p):
    im = Image.open(io.BytesIO(p.read_bytes()))
    im.draft("RGB", (224, 224))
    im = ImageOps.exif_transpose(im).convert("RGB")
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((224, 224), Image.BILINEAR)
    x = ((np.asarray(im, np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
    sess.run(None, {"input": x})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, default=Path("/tmp/fotovakt-bench-12mp-noisy"))
    ap.add_argument("--model", type=Path, default=HERE / "models/efficientnet_lite0.int8.onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    # the same exact int8 kernels as the agent (src/classify/mod.rs EXACT_INT8_KEY): the peer
    # computes the same embedding, at the same cost, on x86 CPUs without VNNI
    so.add_session_config_entry("session.x64quantprecision", "1")
    sess = ort.InferenceSession(str(a.model), so, providers=["CPUExecutionProvider"])
    if a.serve:
        print("ready", flush=True)
        for line in sys.stdin:
            p = Path(line.rstrip("\n"))
            t = time.perf_counter()
            try:
                classify(sess, p)
                print(f"{(time.perf_counter() - t) * 1000:.4f}", flush=True)
            except Exception as e:  # a photo Pillow cannot decode: reported, not timed
                print(f"error {type(e).__name__}", flush=True)
        return
    files = sorted(a.photos.glob("*.jpg"))
    times = []
    for r in range(a.rounds):
        for p in files:
            t = time.perf_counter()
            classify(sess, p)
            if r > 0:
                times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"peer": "python Pillow(draft)+onnxruntime", "threads": a.threads, "photos": len(files),
                      "median_ms": round(statistics.median(times), 2), "mean_ms": round(statistics.mean(times), 2)}))


if __name__ == "__main__":
    main()
