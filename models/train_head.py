#!/usr/bin/env python3
"""Train fotovakt's case-material head on the model's embedding and ImageNet class priors.

The head is a multinomial logistic regression over the photo categories on
  * the L2-normalised pooled embedding [1280], and
  * log-probabilities of groups of ImageNet classes that indicate case material
    (weapons, drugs, cash, documents, screens, vehicles), see GROUPS,
plus a prior rule: the weapon and drug groups (rare in the training photos, critical in the
field) lift the score on their own, so a revolver or a syringe is case material even when
the head has seen few of them.

Training photos are augmented (flip, random crops, whole-image squash, EXIF-thumbnail-like
degradation, grayscale, JPEG recompression) so the head holds on the fast decode paths.
Cross-validation is grouped per photo (augmented copies never straddle folds); the
threshold is the highest one that keeps out-of-fold case recall >= TARGET_RECALL.

Output: models/case_head.json (weights, standardisation, groups, threshold, CV report).
The photos (../shared/data/eval-dev, research licences) are read, never copied.

Usage: python3 models/train_head.py [--data ../shared/data/eval-dev] [--model models/efficientnet_lite0.int8.onnx]
"""

from __future__ import annotations

import os

# ONNX Runtime 1.31+ uploads telemetry unless told not to, before it initialises; the
# agent turns it off the same way (src/classify/runtime.rs).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

import argparse
import csv
import hashlib
import io
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build_model import IMAGE  # noqa: E402

TARGET_RECALL = 0.98
# ImageNet-1k class indices that indicate case material, grouped.
GROUPS: dict[str, list[int]] = {
    # assault rifle, rifle, revolver, holster, bulletproof vest, cannon, missile x2,
    # military uniform, tank, hatchet, cleaver, letter opener, chain mail
    "weapons": [413, 764, 763, 597, 465, 471, 657, 744, 652, 847, 596, 499, 623],
    # syringe, pill bottle, medicine cabinet, mortar and pestle, weighing scale, plastic bag,
    # lighter, face powder
    "drugs": [845, 720, 648, 666, 778, 728, 626, 551],
    # product packet, envelope, wallet, purse, safe, Band-Aid
    "cash": [692, 549, 893, 748, 771, 419],
    # menu, crossword, website, dust jacket, ring binder, comic book, slide rule
    "documents": [922, 918, 916, 921, 446, 917, 798],
    # laptop, notebook computer, iPod, mobile phone, desktop computer, monitor, CRT, TV,
    # hand-held computer
    "screens": [620, 681, 605, 487, 527, 664, 782, 851, 590],
    # minivan, station wagon, moving van, limousine, taxicab, convertible, sports car, police
    # van, semi-trailer truck, pickup, radiator grille, car wheel, ambulance, tow truck, jeep,
    # race car, car mirror, moped, motor scooter
    "vehicles": [656, 436, 675, 627, 468, 511, 817, 734, 867, 717, 581, 479, 407, 864, 609,
                 751, 475, 665, 670],
}
# Groups whose probability alone lifts the score (rule, not learned): see prior_score().
STRONG = ["weapons", "drugs"]
EPS = 1e-4


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def group_features(logits: np.ndarray) -> np.ndarray:
    p = softmax(logits)
    return np.stack([np.log(p[:, idx].sum(axis=1) + EPS) for idx in GROUPS.values()], axis=1)


def strong_prob(logits: np.ndarray) -> np.ndarray:
    p = softmax(logits)
    names = list(GROUPS)
    return np.max(np.stack([p[:, GROUPS[n]].sum(axis=1) for n in STRONG if n in names], 1), 1)


def features(logits: np.ndarray, emb: np.ndarray) -> np.ndarray:
    e = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12)
    return np.concatenate([e, group_features(logits)], axis=1).astype(np.float32)


# ----------------------------------------------------------------------------- views
def _square(im, rng=None, scale=(1.0, 1.0)):
    w, h = im.size
    s = min(w, h)
    if rng is not None:
        s = int(s * np.sqrt(rng.uniform(*scale)))
        x0 = int(rng.integers(0, w - s + 1))
        y0 = int(rng.integers(0, h - s + 1))
    else:
        x0, y0 = (w - s) // 2, (h - s) // 2
    return im.crop((x0, y0, x0 + s, y0 + s))


def load_views(path: Path, rng: np.random.Generator, n_aug: int):
    """View 0 is the evaluation view (centre crop); the rest are training augmentations."""
    from PIL import Image, ImageOps

    im = Image.open(path)
    im.draft("RGB", (IMAGE * 2, IMAGE * 2))
    im = ImageOps.exif_transpose(im).convert("RGB")
    bl = Image.BILINEAR
    views = [_square(im).resize((IMAGE, IMAGE), bl)]
    if n_aug == 0:
        return views
    views.append(ImageOps.mirror(views[0]))
    views.append(im.resize((IMAGE, IMAGE), bl))  # whole frame, squashed
    # EXIF-thumbnail-like: 160 px long side, JPEG q75, back up
    t = im.copy()
    t.thumbnail((160, 160), bl)
    buf = io.BytesIO()
    t.save(buf, "JPEG", quality=75)
    t = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    views.append(_square(t).resize((IMAGE, IMAGE), bl))
    views.append(ImageOps.grayscale(views[0]).convert("RGB"))
    for _ in range(max(0, n_aug - 4)):
        v = _square(im, rng, (0.35, 1.0)).resize((IMAGE, IMAGE), bl)
        if rng.random() < 0.5:
            v = ImageOps.mirror(v)
        if rng.random() < 0.3:
            buf = io.BytesIO()
            v.save(buf, "JPEG", quality=int(rng.integers(40, 90)))
            v = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        views.append(v)
    return views


def to_input(views) -> np.ndarray:
    a = np.stack([np.asarray(v, np.float32) for v in views])
    return ((a - 127.0) / 128.0).transpose(0, 3, 1, 2).copy()


def extract(data: Path, model: Path, n_aug: int, seed: int, cache: Path | None):
    import onnxruntime as ort

    rows = list(csv.DictReader(open(data / "labels.tsv"), delimiter="\t"))
    key = hashlib.sha256(f"{model.read_bytes()[:1<<20]!r}{n_aug}{seed}{len(rows)}".encode()).hexdigest()[:16]
    if cache and (cache / f"feat-{key}.npz").exists():
        z = np.load(cache / f"feat-{key}.npz", allow_pickle=False)
        return rows, z["logits"], z["emb"], z["img"], z["view"]
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    L, E, I, V = [], [], [], []
    for i, r in enumerate(rows):
        views = load_views(data / r["path"], rng, n_aug)
        lg, em = sess.run(None, {"input": to_input(views)})
        L.append(lg)
        E.append(em)
        I += [i] * len(views)
        V += list(range(len(views)))
    out = (np.concatenate(L), np.concatenate(E), np.array(I), np.array(V))
    if cache:
        cache.mkdir(exist_ok=True)
        np.savez(cache / f"feat-{key}.npz", logits=out[0], emb=out[1], img=out[2], view=out[3])
    return (rows, *out)


# ----------------------------------------------------------------------------- head
class Head:
    """Multinomial logistic regression over the photo categories; case_score sums the case ones.

    Learning the personal categories too (pets, food, family indoors, ...) gives the
    case/personal boundary more shape than a binary fit on 305 photos.
    """

    def __init__(self, C: float = 0.3, prior_gain: float = 1.0):
        self.C, self.prior_gain = C, prior_gain

    def fit(self, X: np.ndarray, cat: np.ndarray, case_of_cat: np.ndarray):
        from sklearn.linear_model import LogisticRegression

        self.case_of_cat = case_of_cat
        self.mean = X.mean(0)
        self.std = X.std(0) + 1e-6
        self.lr = LogisticRegression(C=self.C, max_iter=5000, class_weight="balanced")
        self.lr.fit((X - self.mean) / self.std, cat)
        return self

    def head_prob(self, X: np.ndarray) -> np.ndarray:
        P = self.lr.predict_proba((X - self.mean) / self.std)
        return P[:, self.case_of_cat[self.lr.classes_] == 1].sum(1)

    def score(self, X: np.ndarray, strong: np.ndarray) -> np.ndarray:
        return combine(self.head_prob(X), strong, self.prior_gain)

    def export(self) -> tuple[np.ndarray, np.ndarray]:
        """Weights and biases on the unstandardised features: logits = W x + b."""
        W = self.lr.coef_ / self.std
        b = self.lr.intercept_ - (self.lr.coef_ * self.mean / self.std).sum(1)
        return W, b


def combine(p_head: np.ndarray, strong: np.ndarray, gain: float) -> np.ndarray:
    """Noisy-OR of the learned head and the weapon/drug prior rule."""
    prior = np.clip(gain * strong, 0.0, 1.0)
    return 1.0 - (1.0 - p_head) * (1.0 - prior)


def pick_threshold(scores: np.ndarray, y: np.ndarray, recall: float) -> float:
    pos = np.sort(scores[y == 1])
    k = int(np.floor((1.0 - recall) * len(pos)))  # positives we may lose
    return float(pos[k]) if len(pos) else 0.5


def report(scores, y, cats, thr) -> dict:
    pred = scores >= thr
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    out = {"threshold": round(float(thr), 4),
           "case_precision": round(tp / max(tp + fp, 1), 4),
           "case_recall": round(tp / max(tp + fn, 1), 4),
           "categories": {}}
    for c in sorted(set(cats)):
        m = cats == c
        truth = y[m][0]
        correct = (pred[m] == (truth == 1)).mean()
        out["categories"][c] = {"label": "case" if truth else "personal", "n": int(m.sum()),
                                "correct": round(float(correct), 4)}
    return out


def cross_validate(F, strong, cat, img, view, cats_img, case_of_cat, C, gain, folds, repeats, seed):
    from sklearn.model_selection import StratifiedKFold

    n = len(cats_img)
    oof = np.zeros((repeats, n))
    for r in range(repeats):
        skf = StratifiedKFold(folds, shuffle=True, random_state=seed + r)
        for tr, te in skf.split(np.zeros(n), cats_img):
            trm = np.isin(img, tr)
            tem = np.isin(img, te) & (view == 0)
            h = Head(C, gain).fit(F[trm], cat[trm], case_of_cat)
            oof[r, img[tem]] = h.score(F[tem], strong[tem])
    return oof


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE.parent.parent / "shared/data/eval-dev")
    ap.add_argument("--model", type=Path, default=HERE / "efficientnet_lite0.int8.onnx")
    ap.add_argument("--out", type=Path, default=HERE / "case_head.json")
    ap.add_argument("--aug", type=int, default=8, help="augmented views per photo")
    ap.add_argument("--C", type=float, default=0.3)
    ap.add_argument("--prior-gain", type=float, default=1.0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache", type=Path, default=HERE / ".cache")
    ap.add_argument("--sweep", action="store_true", help="print CV for a grid of C / prior gain")
    args = ap.parse_args()

    rows, logits, emb, img, view = extract(args.data, args.model, args.aug, args.seed, args.cache)
    cats_img = np.array([r["category"] for r in rows])
    yi = np.array([1 if r["label"] == "case" else 0 for r in rows])
    categories = sorted(set(cats_img))
    case_of_cat = np.array([int(yi[cats_img == c][0]) for c in categories])
    cat = np.array([categories.index(c) for c in cats_img])[img]
    F = features(logits, emb)
    strong = strong_prob(logits)

    def run(C, gain):
        oof = cross_validate(F, strong, cat, img, view, cats_img, case_of_cat, C, gain,
                             args.folds, args.repeats, args.seed)
        # one threshold from all repeats' out-of-fold scores
        thr = pick_threshold(oof.ravel(), np.tile(yi, oof.shape[0]), TARGET_RECALL)
        cv = report(oof.mean(0), yi, cats_img, thr)
        cv["per_repeat"] = [{k: r[k] for k in ("case_precision", "case_recall")}
                            for r in (report(o, yi, cats_img, thr) for o in oof)]
        return oof, thr, cv

    if args.sweep:
        for C in [0.03, 0.1, 0.3, 1.0]:
            for gain in [0.0, 1.0, 3.0]:
                _, thr, cv = run(C, gain)
                worst = min(cv["categories"].items(), key=lambda kv: kv[1]["correct"])
                print(f"C={C:<5} gain={gain:<4} thr={thr:.3f} P={cv['case_precision']:.3f} "
                      f"R={cv['case_recall']:.3f} worst={worst[0]}:{worst[1]['correct']:.3f}")
        return

    oof, thr, cv = run(args.C, args.prior_gain)
    print(json.dumps(cv, indent=1))
    pred = oof.mean(0) >= thr
    cv["errors"] = []
    for i in np.where(pred != (yi == 1))[0]:
        cv["errors"].append({"path": rows[i]["path"], "score": round(float(oof.mean(0)[i]), 4)})
        print(f"  error {rows[i]['path']} score={oof.mean(0)[i]:.3f}")

    head = Head(args.C, args.prior_gain).fit(F, cat, case_of_cat)
    W, b = head.export()
    # embedding-only category model: tells which category an officer's correction belongs to
    # (corrections keep only the embedding)
    dim = emb.shape[1]
    emb_head = Head(args.C, 0.0).fit(F[:, :dim], cat, case_of_cat)
    Wq, bq = emb_head.export()
    doc = {
        "format": "fotovakt-case-head/1",
        "model_sha256": hashlib.sha256(args.model.read_bytes()).hexdigest(),
        "embedding_dim": int(emb.shape[1]),
        "features": "concat(l2norm(embedding), ln(sum(softmax(logits)[group]) + eps) for group in groups)",
        "eps": EPS,
        "groups": [{"name": k, "classes": v} for k, v in GROUPS.items()],
        "strong_groups": STRONG,
        "prior_gain": args.prior_gain,
        "combine": "p = softmax(W x + b); head = sum(p[case categories]); "
                   "score = 1 - (1 - head) * (1 - min(1, prior_gain * max(sum softmax(logits)[strong group])))",
        "categories": [{"name": c, "case": bool(case_of_cat[k])} for k, c in enumerate(categories)],
        # centre for the on-device corrections' cosine similarity (view-0 embeddings)
        "embedding_mean": [round(float(v), 6) for v in F[view == 0, : emb.shape[1]].mean(0)],
        "category_weights": [[round(float(v), 5) for v in row] for row in Wq],
        "category_bias": [round(float(v), 5) for v in bq],
        "weights": [[round(float(v), 6) for v in row] for row in W],
        "bias": [round(float(v), 6) for v in b],
        "threshold": round(thr, 4),
        "target_recall": TARGET_RECALL,
        "train": {"photos": len(rows), "views_per_photo": int(view.max()) + 1, "C": args.C,
                  "folds": args.folds, "repeats": args.repeats, "seed": args.seed},
        "cv": cv,
    }
    args.out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} threshold={thr:.4f}")


if __name__ == "__main__":
    main()
