#!/usr/bin/env python3
"""Small random sparse autoencoders in the layouts users have them, for tests/test_sae.cpp, and
their encodings of seeded random inputs computed with ports of each project's own encode.

Widths are the bundled shapes-clip model's: its residual stream is 128 wide (layer:L SAEs), its
image embedding 64 (output SAEs). Run with /usr/bin/python3 (torch, numpy, safetensors-free: the
SAELens / vitscope files are written by a small writer below). Outputs are committed.

  prisma-output/       ViT-Prisma: config.json + weights.pt (torch.save of the state dict),
                       hook_post_head_pre_normalize, TopK k=8, layer_norm normalisation
  prisma-layer2/       ViT-Prisma: config.json + n_images_1000.pt, blocks.2.hook_resid_post, ReLU
  saelens-layer1/      SAELens >= 6: cfg.json + sae_weights.safetensors, topk k=6 with
                       rescale_acts_by_decoder_norm, blocks.1.hook_resid_post
  saelens-output/      SAELens < 6 (hook_point, activation_fn_str relu), layer_norm,
                       apply_b_dec_to_input false, hook_post_head_pre_normalize
  msae/128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth
                       MSAE Matryoshka checkpoint as its train.py saves it (mean_center, scaling
                       factor), input normalisation on, latent soft cap 30
  saelens-constnorm/   SAELens >= 6: standard ReLU, constant_norm_rescale, blocks.1.hook_resid_pre
  vitscope-layer3.safetensors   vitscope's own file, layer:3, topk k=5, layer_norm
  inputs_64.npy, inputs_128.npy   [5, d] float32 inputs
  NAME.pre.npy, NAME.latents.npy  reference pre-activations / latents for each SAE
  bad/...              broken files for the error tests
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(31)


def rand_sae(d_in, d_sae, bias_scale=0.1):
    return {
        "W_enc": torch.randn(d_in, d_sae) / d_in ** 0.5,
        "b_enc": torch.randn(d_sae) * bias_scale,
        "W_dec": torch.randn(d_sae, d_in) / d_sae ** 0.5,
        "b_dec": torch.randn(d_in) * bias_scale,
    }


def write_safetensors(path, tensors, metadata=None):
    header = {}
    offset = 0
    blobs = []
    for name in sorted(tensors):
        a = tensors[name].detach().contiguous().numpy().astype("<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- ports of each project's encode ----
def layer_norm_in(x, eps=1e-5):  # ViT-Prisma / SAELens run_time_activation_ln_in, MSAE normalize_data
    mu = x.mean(dim=-1, keepdim=True)
    x = x - mu
    std = x.std(dim=-1, keepdim=True)
    return x / (std + eps)


def topk_relu(pre, k):  # ViT-Prisma TopK(k, ReLU), SAELens TopK, MSAE TopKReLU
    vals, idx = torch.topk(pre, k=k, dim=-1)
    out = torch.zeros_like(pre)
    out.scatter_(-1, idx, torch.relu(vals))
    return out


def prisma_encode(sd, cfg, x):
    if cfg["normalize_activations"] == "layer_norm":
        x = layer_norm_in(x)
    pre = (x - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"]
    if cfg["activation_fn_str"] == "topk":
        return pre, topk_relu(pre, cfg["activation_fn_kwargs"]["k"])
    return pre, torch.relu(pre)


def saelens_encode(sd, cfg, x):
    if cfg.get("normalize_activations") == "layer_norm":
        x = layer_norm_in(x)
    elif cfg.get("normalize_activations") == "constant_norm_rescale":  # run_time_activation_norm_fn_in
        x = x * (cfg["d_in"] ** 0.5) / x.norm(dim=-1, keepdim=True)
    if cfg.get("apply_b_dec_to_input", True):
        x = x - sd["b_dec"]
    pre = x @ sd["W_enc"] + sd["b_enc"]
    arch = cfg.get("architecture", "standard")
    if arch == "topk" or cfg.get("activation_fn_str") == "topk":
        if cfg.get("rescale_acts_by_decoder_norm", False):
            pre = pre * sd["W_dec"].norm(dim=-1)
        k = cfg.get("k") or cfg["activation_fn_kwargs"]["k"]
        return pre, topk_relu(pre, k)
    return pre, torch.relu(pre)


def msae_encode(ck, k, normalize, soft_cap, x):
    sd = ck["model"]
    x = (x - ck["mean_center"]) * ck["scaling_factor"]  # SAE.preprocess
    if normalize:
        x = layer_norm_in(x)  # Autoencoder.preprocess -> normalize_data
    pre = (x - sd["pre_bias"]) @ sd["encoder"] + sd["latent_bias"]
    lat = topk_relu(pre, k)
    if soft_cap > 0:
        lat = soft_cap * torch.tanh(lat / soft_cap)
    return pre, lat


def vitscope_encode(sd, meta, x):
    if meta["normalize"] == "layer_norm":
        x = layer_norm_in(x)
    pre = (x - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"]
    if meta["activation"] == "topk":
        return pre, topk_relu(pre, int(meta["k"]))
    return pre, torch.relu(pre)


def save_ref(name, pre, lat):
    np.save(os.path.join(HERE, name + ".pre.npy"), pre.numpy().astype(np.float32))
    np.save(os.path.join(HERE, name + ".latents.npy"), lat.numpy().astype(np.float32))


def prisma_config(layer, subtype, d_in, expansion, act, k, norm):
    return {"model_name": "shapes-clip", "hook_point_layer": layer, "layer_subtype": subtype,
            "d_in": d_in, "expansion_factor": expansion, "activation_fn_str": act,
            "activation_fn_kwargs": {"k": k} if act == "topk" else {},
            "normalize_activations": norm, "architecture": "standard", "cls_token_only": True,
            "_dtype": "float32", "_device": "cpu"}


def main():
    inputs = {d: torch.randn(5, d) * 2.0 + 0.3 for d in (64, 128)}
    for d, x in inputs.items():
        np.save(os.path.join(HERE, "inputs_%d.npy" % d), x.numpy().astype(np.float32))

    # ViT-Prisma, output, TopK 8, layer_norm: weights.pt
    os.makedirs(os.path.join(HERE, "prisma-output"), exist_ok=True)
    cfg = prisma_config(3, "hook_post_head_pre_normalize", 64, 2, "topk", 8, "layer_norm")
    sd = rand_sae(64, 128)
    json.dump(cfg, open(os.path.join(HERE, "prisma-output", "config.json"), "w"), indent=2)
    torch.save(sd, os.path.join(HERE, "prisma-output", "weights.pt"))
    save_ref("prisma-output", *prisma_encode(sd, cfg, inputs[64]))

    # ViT-Prisma, blocks.2.hook_resid_post, ReLU: n_images_1000.pt
    os.makedirs(os.path.join(HERE, "prisma-layer2"), exist_ok=True)
    cfg = prisma_config(2, "hook_resid_post", 128, 1, "relu", 0, "none")
    sd = rand_sae(128, 128)
    json.dump(cfg, open(os.path.join(HERE, "prisma-layer2", "config.json"), "w"), indent=2)
    torch.save(sd, os.path.join(HERE, "prisma-layer2", "n_images_1000.pt"))
    save_ref("prisma-layer2", *prisma_encode(sd, cfg, inputs[128]))

    # SAELens >= 6, topk with decoder-norm rescaling
    os.makedirs(os.path.join(HERE, "saelens-layer1"), exist_ok=True)
    cfg = {"d_in": 128, "d_sae": 48, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
           "normalize_activations": "none", "reshape_activations": "none", "architecture": "topk", "k": 6,
           "rescale_acts_by_decoder_norm": True,
           "metadata": {"sae_lens_version": "6.5.0", "model_name": "shapes-clip",
                        "hook_name": "blocks.1.hook_resid_post"}}
    sd = rand_sae(128, 48)
    json.dump(cfg, open(os.path.join(HERE, "saelens-layer1", "cfg.json"), "w"), indent=2)
    write_safetensors(os.path.join(HERE, "saelens-layer1", "sae_weights.safetensors"), sd)
    save_ref("saelens-layer1", *saelens_encode(sd, cfg, inputs[128]))

    # SAELens < 6: standard ReLU, layer_norm, no b_dec on the input, output hook
    os.makedirs(os.path.join(HERE, "saelens-output"), exist_ok=True)
    cfg = {"d_in": 64, "d_sae": 64, "hook_point": "hook_post_head_pre_normalize", "hook_point_layer": 3,
           "activation_fn_str": "relu", "apply_b_dec_to_input": False, "normalize_activations": "layer_norm",
           "sae_lens_training_version": "3.13.0", "model_name": "shapes-clip"}
    sd = rand_sae(64, 64)
    json.dump(cfg, open(os.path.join(HERE, "saelens-output", "cfg.json"), "w"), indent=2)
    write_safetensors(os.path.join(HERE, "saelens-output", "sae_weights.safetensors"), sd)
    save_ref("saelens-output", *saelens_encode(sd, cfg, inputs[64]))

    # MSAE Matryoshka (RW), TopKReLU with k = the first nesting size 8, normalize on, soft cap 30
    os.makedirs(os.path.join(HERE, "msae"), exist_ok=True)
    base = rand_sae(64, 128)
    state = {"pre_bias": base["b_dec"], "encoder": base["W_enc"], "latent_bias": base["b_enc"],
             "decoder": base["W_dec"], "latents_activation_frequency": torch.zeros(128, dtype=torch.int64)}
    ck = {"model": state, "mean_center": torch.randn(64) * 0.5, "scaling_factor": 0.7, "target_norm": 8.0}
    name = "128_64_TopKReLU_8_RW_False_True_30.0_cc3m.pth"
    torch.save(ck, os.path.join(HERE, "msae", name))
    save_ref("msae", *msae_encode(ck, 8, True, 30.0, inputs[64]))

    # vitscope's own file
    meta = {"format": "vitscope-sae", "version": "1", "site": "layer:3", "activation": "topk", "k": "5",
            "normalize": "layer_norm", "objective": "topk", "groups": "", "model": "models/shapes-clip",
            "seed": "7", "steps": "0"}
    sd = rand_sae(128, 64)
    write_safetensors(os.path.join(HERE, "vitscope-layer3.safetensors"), sd, meta)
    save_ref("vitscope-layer3", *vitscope_encode(sd, meta, inputs[128]))

    # Broken files: a missing key, a wrong shape, an unknown hook point.
    bad = os.path.join(HERE, "bad")
    for sub in ("missing-key", "wrong-shape", "mlp-out"):
        os.makedirs(os.path.join(bad, sub), exist_ok=True)
    sd = rand_sae(64, 16)
    cfg = prisma_config(3, "hook_resid_post", 64, 2, "relu", 0, "none")
    json.dump(cfg, open(os.path.join(bad, "missing-key", "config.json"), "w"))
    torch.save({k: v for k, v in sd.items() if k != "b_enc"}, os.path.join(bad, "missing-key", "weights.pt"))
    json.dump(cfg, open(os.path.join(bad, "wrong-shape", "config.json"), "w"))
    torch.save(dict(sd, b_dec=torch.zeros(63)), os.path.join(bad, "wrong-shape", "weights.pt"))
    cfg = prisma_config(1, "hook_mlp_out", 64, 2, "relu", 0, "none")
    json.dump(cfg, open(os.path.join(bad, "mlp-out", "config.json"), "w"))
    torch.save(sd, os.path.join(bad, "mlp-out", "weights.pt"))

    # SAELens >= 6, standard ReLU with constant_norm_rescale, blocks.1.hook_resid_pre (= layer:0)
    os.makedirs(os.path.join(HERE, "saelens-constnorm"), exist_ok=True)
    cfg = {"d_in": 128, "d_sae": 32, "apply_b_dec_to_input": True, "normalize_activations": "constant_norm_rescale",
           "architecture": "standard", "metadata": {"sae_lens_version": "6.5.0", "hook_name": "blocks.1.hook_resid_pre"}}
    sd = rand_sae(128, 32)
    json.dump(cfg, open(os.path.join(HERE, "saelens-constnorm", "cfg.json"), "w"), indent=2)
    write_safetensors(os.path.join(HERE, "saelens-constnorm", "sae_weights.safetensors"), sd)
    save_ref("saelens-constnorm", *saelens_encode(sd, cfg, inputs[128]))


if __name__ == "__main__":
    main()
