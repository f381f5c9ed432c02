#!/usr/bin/env python3
"""How noisy is "personal taken at recall 0.98"? Group bootstrap of a cv22 result's pooled scores.

Resamples the 64 groups with replacement (1000 times), recomputes the recall-0.98 threshold and
the personal photos taken. Usage: python3 models/bootstrap.py models/.cache/cv-X.json [...] [--which no_priors]
With two files: the paired difference (same resampled groups), second minus first.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import finetune as ft  # noqa: E402
import train_head as th  # noqa: E402


def taken(s, y):
    t = th.pick_threshold(s, y, th.TARGET_RECALL)
    return (s[y == 0] >= t).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--which", default="nested_priors")
    ap.add_argument("--n", type=int, default=1000)
    args = ap.parse_args()
    rows, cats, categories, y, case_of_cat, cat_img, groups, w = ft.setup()
    S = [np.array(json.loads(f.read_text())[args.which]["scores"]) for f in args.files]
    G = sorted(set(groups))
    idx = {g: np.where(groups == g)[0] for g in G}
    rng = np.random.default_rng(0)
    res = []
    for _ in range(args.n):
        pick = np.concatenate([idx[G[k]] for k in rng.integers(0, len(G), len(G))])
        res.append([taken(s[pick], y[pick]) for s in S])
    res = np.array(res) * 100
    for f, s, r in zip(args.files, S, res.T):
        print(f"{f.name} {args.which}: taken {100 * taken(s, y):.1f} %, group bootstrap 90 % interval "
              f"{np.percentile(r, 5):.1f}-{np.percentile(r, 95):.1f} %")
    if len(S) == 2:
        d = res[:, 1] - res[:, 0]
        print(f"paired difference (second - first): median {np.median(d):+.1f} points, 90 % interval "
              f"{np.percentile(d, 5):+.1f} to {np.percentile(d, 95):+.1f}")


if __name__ == "__main__":
    main()
