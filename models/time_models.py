#!/usr/bin/env python3
"""Inference time per photo, one thread, exact int8 kernels, alternating the models call by call.

Usage: python3 models/time_models.py MODEL.onnx [MODEL2.onnx ...] [--text] [--n 40]
Prints the median ms of each (and of the text detector at text_signal.LONG with --text), and the
peak RSS of this process.
"""

from __future__ import annotations

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_model as bm  # noqa: E402
import text_signal as ts  # noqa: E402


def main():
    import onnxruntime as ort

    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--text", action="store_true")
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.x64quantprecision", "1")
    sess = {m.name: ort.InferenceSession(str(m), so, providers=["CPUExecutionProvider"]) for m in args.models}
    files = sorted((HERE.parent.parent / "shared/data/train-extra").rglob("*.jpg"))[:: 3][: args.n]
    xs = [bm.preprocess(f) for f in files]
    tx = [ts.prep(f) for f in files] if args.text else []
    det = ts.session(1) if args.text else None
    t = {k: [] for k in list(sess) + (["text-det"] if det else [])}
    for i, x in enumerate(xs):
        for k, s in sess.items():
            a = time.perf_counter()
            s.run(None, {"input": x})
            t[k].append((time.perf_counter() - a) * 1000)
        if det:
            a = time.perf_counter()
            det.run(None, {"x": tx[i]})
            t["text-det"].append((time.perf_counter() - a) * 1000)
    for k, v in t.items():
        v = v[2:]
        print(f"{k}: median {np.median(v):.1f} ms, p10 {np.percentile(v, 10):.1f}, p90 {np.percentile(v, 90):.1f} "
              f"({len(v)} photos)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (all sessions together)")


if __name__ == "__main__":
    main()
