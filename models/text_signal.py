#!/usr/bin/env python3
"""Text density from PP-OCRv4's text detector (PyPI rapidocr-onnxruntime==1.4.4, Apache-2.0).

The second signal of issue 22: documents, receipts, ID documents, screens, plates and banknotes
carry text; most personal photos carry little. Only the detector runs (no recognition).

Preprocessing (what a Rust port must do, bit for bit up to the resize):
  1. decode, apply EXIF orientation, RGB;
  2. resize the WHOLE frame (no crop) with Pillow BILINEAR so the long side is LONG (384) px,
     each side round(side * LONG / long_side / 32) * 32, at least 32;
  3. channels in BGR order (the detector was trained on OpenCV's BGR), x / 255, (x - 0.5) / 0.5,
     NCHW float32;
  4. run `ch_PP-OCRv4_det_infer.onnx` (input `x`), output [1, 1, H, W] text probability.
Features of the probability map p (H x W):
  text_area  = mean(p > 0.3)         (share of pixels the detector calls text)
  text_mean  = mean(p)
  text_lines = ln(1 + number of 4-connected components of (p > 0.3) with >= 8 pixels)

Cached per photo in models/.cache (never committed: derived from research-licence photos).
"""

from __future__ import annotations

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import csv
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LONG = 384
THRESH = 0.3
MIN_PIXELS = 8


def det_model_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    return Path(spec.origin).parent / "models/ch_PP-OCRv4_det_infer.onnx"


def session(threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(det_model_path()), so, providers=["CPUExecutionProvider"])


def prep(path: Path, long: int = LONG) -> np.ndarray:
    from PIL import Image, ImageOps

    im = Image.open(path)
    im.draft("RGB", (long, long))
    im = ImageOps.exif_transpose(im).convert("RGB")
    w, h = im.size
    s = long / max(w, h)
    nw, nh = max(32, round(w * s / 32) * 32), max(32, round(h * s / 32) * 32)
    im = im.resize((nw, nh), Image.BILINEAR)
    a = np.asarray(im, np.float32)[:, :, ::-1] / 255.0
    return ((a - 0.5) / 0.5).transpose(2, 0, 1)[None].copy()


def text_features(p: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    m = p > THRESH
    lab, n = ndimage.label(m)  # 4-connectivity (the default structure)
    if n:
        sizes = np.bincount(lab.ravel())[1:]
        n = int((sizes >= MIN_PIXELS).sum())
    return np.array([m.mean(), p.mean(), np.log1p(n)], np.float32)


def extract(rows_by_folder: list[tuple[Path, list[dict]]], cache: Path) -> tuple[np.ndarray, float]:
    """Features for every row, in order; returns (features [N, 3], mean ms per photo)."""
    sess = None
    out, times = [], []
    for d, rows in rows_by_folder:
        lab = d / "labels.tsv"
        key = hashlib.sha256(f"{hashlib.sha256(lab.read_bytes()).hexdigest()}|{LONG}|{THRESH}|{MIN_PIXELS}|"
                             f"{hashlib.sha256(det_model_path().read_bytes()).hexdigest()}".encode()).hexdigest()[:16]
        f = cache / f"text-{d.name}-{key}.npz"
        if f.exists():
            z = np.load(f)
            out.append(z["feat"])
            times += list(z["ms"])
            continue
        sess = sess or session()
        feats, ms = [], []
        for i, r in enumerate(rows):
            x = prep(d / r["path"])
            t = time.perf_counter()
            p = sess.run(None, {"x": x})[0][0, 0]
            ms.append((time.perf_counter() - t) * 1000)
            feats.append(text_features(p))
            if i % 100 == 0:
                print(f"  text {d.name} {i}/{len(rows)}", file=sys.stderr, flush=True)
        cache.mkdir(exist_ok=True)
        np.savez(f, feat=np.array(feats), ms=np.array(ms))
        out.append(np.array(feats))
        times += ms
    return np.concatenate(out), float(np.mean(times))


if __name__ == "__main__":
    shared = HERE.parent.parent / "shared/data"
    folders = [shared / d for d in ("eval-dev", "train-extra", "train-extra2")]
    rbf = [(d, [r for r in csv.DictReader(open(d / "labels.tsv"), delimiter="\t") if r["label"] != "skip"])
           for d in folders]
    feat, ms = extract(rbf, HERE / ".cache")
    print(feat.shape, f"{ms:.1f} ms per photo (detector only)")
