#!/usr/bin/python3
"""Writes the register test data: random layer outputs and MLP activations with planted high-norm
tokens, and what test-time-registers' own steps give on them, re-stated here step by step:
- shared/algorithms.py find_register_neurons: per image, the token norms of the detection layer's
  output; the positions whose norm is > the threshold (images without any are skipped); per layer
  the mean |activation| there per neuron, times the sparsity mask when the filter is on (a layer
  without any sparse neuron keeps zeros for that image); the mean over the images kept; every
  (layer, neuron) sorted by it, best first (a stable sort here: torch.sort's order of ties is not
  specified; vitscope keeps ties in (layer, neuron) order);
- shared/hook_fn.py activate_on_registers with shared/utils.py sign_max: the last num_registers
  tokens get scale * sign_max over every token and every chosen neuron; tokens 1..-num_registers
  per normal_values (zero, mean, only_outliers, same).
Needs Debian's python3-torch and python3-numpy. Run: tests/data/registers/make_reference.py"""
import os

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2930)
IMAGES, LAYERS, TOKENS, WIDTH, NEURONS = 7, 3, 10, 8, 12


def find(layer_outputs, acts, threshold, detect_layer, sparsity, frac=0.5, act_threshold=0.5):
    scores = torch.zeros((layer_outputs.shape[0], LAYERS, NEURONS))
    count = 0
    for i in range(layer_outputs.shape[0]):
        norms = torch.norm(layer_outputs[i, detect_layer], dim=1)
        filtered = norms.clone()
        filtered[filtered < threshold] = 0
        where = torch.where(filtered > threshold)[0]
        if len(where) == 0:
            continue
        for layer in range(LAYERS):
            act = acts[i, layer]
            values = torch.abs(act[where])
            if sparsity:
                sparse = torch.sum(act < act_threshold, dim=0) >= frac * act.shape[0]
                if not torch.any(sparse):
                    continue
                scores[count, layer] = values.mean(dim=0) * sparse.float()
            else:
                scores[count, layer] = values.mean(dim=0)
        count += 1
    assert count > 0
    mean = scores[:count].mean(dim=0).flatten()
    values, order = torch.sort(mean, descending=True, stable=True)
    pairs = np.array([[int(k) // NEURONS, int(k) % NEURONS] for k in order], dtype=np.int64)
    return pairs, values.numpy().astype(np.float32), count


def sign_max(t):
    hi, lo = torch.max(t), torch.min(t)
    return hi if abs(hi) > abs(lo) else lo


def activate(output, registers, neurons, scale, mode):
    output = output.clone()
    output[0, -registers:, neurons] = scale * sign_max(output[0, :, neurons]).unsqueeze(0).expand(registers, -1)
    if mode == "zero":
        output[0, 1:-registers, neurons] = 0
    elif mode == "mean":
        patches = output[0, 1:-registers, neurons]
        output[0, 1:-registers, neurons] = torch.mean(patches, dim=0).unsqueeze(0).expand(output.shape[1] - registers - 1, -1)
    elif mode == "only_outliers":
        patches = output[0, 1:-registers, neurons].clone()
        means, stds = torch.mean(patches, dim=0), torch.std(patches, dim=0)
        mask = patches > (means + stds).unsqueeze(0)
        patches[mask] = means.unsqueeze(0).expand_as(patches)[mask]
        output[0, 1:-registers, neurons] = patches
    return output


def save(name, array):
    np.save(os.path.join(here, name), np.ascontiguousarray(array))


# Layer outputs: unit-scale tokens, a few planted at norm ~40 from layer 1 on; image 3 has none.
outputs = rng.standard_normal((IMAGES, LAYERS, TOKENS, WIDTH)).astype(np.float32)
acts = rng.standard_normal((IMAGES, LAYERS, TOKENS, NEURONS)).astype(np.float32)
for i in range(IMAGES):
    if i == 3:
        continue
    spots = rng.choice(np.arange(1, TOKENS), size=1 + i % 2, replace=False)
    for t in spots:
        outputs[i, 1:, t] *= 40.0 / np.linalg.norm(outputs[i, -1, t])
        acts[i, 1, t, [2, 7]] += 6.0 + i   # the planted register neurons (layer 1)
        acts[i, 0, t, 5] -= 4.0            # a negative one (|activation| counts)
acts[5, 2] = np.abs(acts[5, 2]) + 1.0      # image 5, layer 2: no sparse neuron
save("layer_outputs.npy", outputs)
save("activations.npy", acts)
lo, ac = torch.from_numpy(outputs), torch.from_numpy(acts)
pairs, values, count = find(lo, ac, 30.0, -1, False)
save("find_default_pairs.npy", pairs)
save("find_default_scores.npy", values)
pairs, values, count2 = find(lo, ac, 20.0, -2, True)
save("find_sparse_pairs.npy", pairs)
save("find_sparse_scores.npy", values)
print("images kept:", count, count2)

# The intervention: one image of 1 + 9 + 2 tokens (two registers), chosen neurons 1, 4, 9.
hidden = rng.standard_normal((1, 12, NEURONS)).astype(np.float32)
hidden[0, 6, 4] = -9.0  # the sign-max is negative
save("hidden.npy", hidden)
neurons = [1, 4, 9]
save("hidden_neurons.npy", np.array(neurons, dtype=np.int64))
for mode in ("zero", "mean", "only_outliers", "same"):
    save(f"activate_{mode}.npy", activate(torch.from_numpy(hidden), 2, neurons, 1.5, mode).numpy())
