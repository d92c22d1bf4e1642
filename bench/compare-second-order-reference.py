#!/usr/bin/python3
"""Second-order neuron effects: vitscope against the reference's own code, run here on the same
released-size model and pixels.

Builds second_order_lens's own ViT-B-16 CLIP (its utils.factory, random weights; every LayerNorm
gain and offset and every bias perturbed so that no share is trivially zero), saves it in the
open_clip layout, and for each MLP layer asked for: runs the reference's hook exactly as
compute_second_order_neuron_prs.py does (one image at a time; every later layer and head, summed),
then `vitscope-cli second-order` on the same pixels. Prints seconds per image of both, their ratio,
and the largest difference relative to the largest effect.

The reference is not part of vitscope: pass the path of a checkout of
github.com/yossigandelsman/second_order_lens. Needs Debian's python3-torch and python3-regex (ftfy and einops, which
its tokenizer and text code import, are not in Debian and are not used on the image side: stand-ins are given).

Usage: bench/compare-second-order-reference.py SECOND_ORDER_LENS_CHECKOUT [build/bin/vitscope-cli]
       [--layers 9,10] [--images 2] [--work /tmp/vitscope-second-order]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import types

import numpy as np
import torch

parser = argparse.ArgumentParser()
parser.add_argument("reference")
parser.add_argument("cli", nargs="?", default="build/bin/vitscope-cli")
parser.add_argument("--layers", default="9,10")
parser.add_argument("--images", type=int, default=1)
parser.add_argument("--work", default="/tmp/vitscope-second-order")
args = parser.parse_args()

for missing in ("ftfy", "einops"):  # imported by its tokenizer and text tower; not used on the image side
    sys.modules.setdefault(missing, types.ModuleType(missing))
sys.path.insert(0, os.path.abspath(args.reference))
from utils.factory import create_model_and_transforms  # noqa: E402  (the reference's own code)
from prs_second_order_neurons_hook import hook_prs_logger  # noqa: E402

os.makedirs(args.work, exist_ok=True)
torch.manual_seed(0)
model, _, _ = create_model_and_transforms("ViT-B-16", pretrained=None, force_quick_gelu=True)
with torch.no_grad():
    # Its LayerNorm leaves gains and offsets uninitialised (torch.empty: released weights fill them);
    # every gain near 1 and every bias and offset small and non-zero, so that no share is trivially zero.
    for name, p in model.named_parameters():
        if ".ln_" in name or name.startswith("visual.ln") or name.startswith("ln_final"):
            p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.05 * torch.randn_like(p))
        elif name.endswith("bias"):
            p.copy_(0.05 * torch.randn_like(p))
    assert all(torch.isfinite(p).all() for p in model.parameters())
state = model.state_dict()
model_dir = os.path.join(args.work, "model")
os.makedirs(model_dir, exist_ok=True)
torch.save(state, os.path.join(model_dir, "open_clip_pytorch_model.bin"))
with open(os.path.join(model_dir, "open_clip_config.json"), "w") as f:
    # Its factory honours force_quick_gelu only for OpenAI's released weights: this model has the activation its config names.
    quick = type(model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    json.dump({"model_cfg": {"embed_dim": 512, "quick_gelu": quick,
                             "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 16},
                             "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}}, f)
pixels = torch.randn(args.images, 3, 224, 224)
np.save(os.path.join(args.work, "pixels.npy"), pixels.numpy())
torch.set_num_threads(os.cpu_count())
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; ViT-B-16, {args.images} images")

for layer in [int(x) for x in args.layers.split(",")]:
    # A fresh model per layer: the reference's hooks stay registered on the model they were given.
    model, _, _ = create_model_and_transforms("ViT-B-16", pretrained=None, force_quick_gelu=True)
    model.load_state_dict(state)
    model.eval()
    prs = hook_prs_logger(model, layer, "cpu")
    heads = model.visual.transformer.resblocks[0].attn.num_heads
    results = []
    start = time.time()
    for i in range(args.images):
        with torch.no_grad():
            prs.reinit()
            representation = model.encode_image(pixels[i:i + 1], attn_method="head", normalize=False)
            prs.finalize()
            current = []
            for later in range(layer + 1, len(model.visual.transformer.resblocks)):
                for head in range(heads):
                    current.append(prs.apply_attention_head_and_project_layer_neurons(later, head, representation))
            results.append(np.stack(current, axis=0).sum(axis=0))
    reference_seconds = (time.time() - start) / args.images
    reference = np.concatenate(results, axis=0)
    print(f"layer {layer}: reference {reference_seconds:.2f} s/image", flush=True)
    out = os.path.join(args.work, f"ours-{layer}")
    subprocess.run(["rm", "-rf", out], check=True)
    env = dict(os.environ, VITSCOPE_THREADS="1", OPENBLAS_NUM_THREADS=str(os.cpu_count()))
    start = time.time()
    subprocess.run([args.cli, "second-order", "--model", model_dir, "--pixels", os.path.join(args.work, "pixels.npy"),
                    "--layer", str(layer), "--batch", "1", "--out", out], check=True, env=env, stdout=subprocess.DEVNULL)
    command_seconds = (time.time() - start) / args.images
    with open(os.path.join(out, "summary.json")) as f:
        ours_seconds = json.load(f)["seconds_per_image"]
    ours = np.load(os.path.join(out, "effects.npy"))
    miss = np.abs(ours - reference).max() / np.abs(reference).max()
    print(f"layer {layer}: reference {reference_seconds:.2f} s/image, vitscope-cli second-order {ours_seconds:.3f} s/image "
          f"(forward and effects at batch 1; the whole command {command_seconds:.2f} s/image with model loading and the "
          f"image-independent maps): {reference_seconds / ours_seconds:.0f}x; "
          f"effects {reference.shape}, largest difference / largest effect {miss:.2e}")
