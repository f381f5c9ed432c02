#!/usr/bin/env python3
"""Issue 22 try T5: the head also reads pooled features of earlier layers (frozen network).

Lower layers carry colour and texture (fire, glass, paper) more than object identity; maybe they
generalise differently across sources. Features per view: train_head's [l2norm(embedding),
ImageNet groups] + l2norm(mean-pooled block-15 input, 192) + l2norm(mean-pooled block-15 output,
320). The same views (0..k-1 of finetune.py's cache) and folds as the T1 control.
The shipped ONNX graph would need one more output (a pooled tensor) for this: not in the format
fotovakt-case-head/1 (its features are the embedding and the logits only).
Usage: python3 models/multilevel.py [--head-views 6] [--scheme gkf10]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import cv22  # noqa: E402
import finetune as ft  # noqa: E402
import train_head as th  # noqa: E402


def l2(x):
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-12)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--head-views", type=int, default=6)
    ap.add_argument("--scheme", default="gkf10")
    args = ap.parse_args()
    rows, cats, categories, y, case_of_cat, cat_img, groups, w = ft.setup()
    A, L = ft.cache_activations(rows)
    hv = list(range(args.head_views))
    A = A[:, hv]
    sd = ft.state_dict()
    B = ft.frozen_b15(sd, A)
    net, _ = ft.make_tail(sd, "head")
    Lg, Em = ft.tail_outputs(net, B, ft.CUT + 1)
    pa = l2(A.astype(np.float32).mean((3, 4)))
    pb = l2(B.astype(np.float32).mean((3, 4)))
    n, V = Lg.shape[:2]
    base = th.features(Lg.reshape(n * V, -1), Em.reshape(n * V, -1)).reshape(n, V, -1)
    sp = cv22.splits(args.scheme, y, groups)
    strong = th.strong_prob(Lg[:, 0])
    for name, X in (("frozen (control)", base), ("+ pooled block-15 input and output", np.concatenate([base, pa, pb], 2)),
                    ("+ pooled block-15 output", np.concatenate([base, pb], 2))):
        P = np.zeros((n, len(categories)))
        for tr, te in sp:
            h = th.Head(1.0).fit(X[tr].reshape(-1, X.shape[2]), np.repeat(cat_img[tr], V), case_of_cat,
                                 np.repeat(w[tr], V))
            P[te] = h.cat_prob(X[te, 0])
        cv22.evaluate(P, strong, y, cats, groups, case_of_cat, sp, 2.0, f"T5 {name} {args.scheme}")


if __name__ == "__main__":
    main()
