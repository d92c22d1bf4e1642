#!/usr/bin/env python3
"""Released-size check of the Swin and MaxViT loaders against torchvision's own code.

Builds torchvision's swin_t, swin_s, swin_b and maxvit_t with random weights (BatchNorm running
statistics perturbed), saves each state dict with torch.save as released checkpoints are, runs
the model on random pixels in eval mode, then runs `vitscope-cli embed` on the same pixels and
prints the largest relative difference of features and logits. Needs python3-torch and
python3-torchvision (Debian); not part of the test suite.

Usage: bench/check-released-sizes.py [build/bin/vitscope-cli] [work dir]
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torchvision

cli = sys.argv[1] if len(sys.argv) > 1 else "build/bin/vitscope-cli"
work = sys.argv[2] if len(sys.argv) > 2 else "/tmp/vitscope-released"
os.makedirs(work, exist_ok=True)
torch.manual_seed(0)
results = {}
for name in ["swin_t", "swin_s", "swin_b", "maxvit_t"]:
    model = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.normal_(1, 0.1)
                m.bias.normal_(0, 0.1)
        pixels = torch.randn(2, 3, 224, 224)
        if name.startswith("swin"):
            feats = model.avgpool(model.permute(model.norm(model.features(pixels)))).flatten(1)
        else:
            x = model.stem(pixels)
            for block in model.blocks:
                x = block(x)
            feats = model.classifier[:5](x)  # pool, flatten, LayerNorm, Linear, Tanh: the pre-logits
        logits = model(pixels)
    path = os.path.join(work, name + ".pth")
    torch.save(model.state_dict(), path)
    np.save(os.path.join(work, name + "-pixels.npy"), pixels.numpy())
    out = os.path.join(work, name + "-out")
    subprocess.run([cli, "embed", "--model", path, "--pixels", os.path.join(work, name + "-pixels.npy"), "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    mine_f = np.load(os.path.join(out, "features.npy"))
    mine_l = np.load(os.path.join(out, "logits.npy"))
    rel_f = float(np.abs(mine_f - feats.numpy()).max() / np.abs(feats.numpy()).max())
    rel_l = float(np.abs(mine_l - logits.numpy()).max() / np.abs(logits.numpy()).max())
    results[name] = {"features_rel": rel_f, "logits_rel": rel_l}
    print(f"{name}: features max relative difference {rel_f:.3g}, logits {rel_l:.3g}", flush=True)
print(json.dumps(results))
