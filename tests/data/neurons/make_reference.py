#!/usr/bin/python3
"""Writes the neuron-analysis test data: random second-order effects and text embeddings, and what
second_order_lens's own steps give on them, re-stated here line for line:
- compute_pcas.py: centre each neuron over the images, the top-k images by centred norm, the first
  right singular vector, signed by the count of positive projections against top_k // 2;
- compute_sparse_decomposition.py: texts centred over the texts, every column scaled to norm 100,
  sklearn's SparseCoder (omp, transform_alpha 1e-4, n_nonzero_coefs) on the directions.
Needs Debian's python3-numpy and python3-sklearn. Run: tests/data/neurons/make_reference.py"""
import os

import numpy as np
from sklearn.decomposition import SparseCoder

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(2029)


def effects(images, neurons, dim):
    # A few shared directions with per-image weights plus noise: each neuron has a clear first direction.
    basis = rng.standard_normal((neurons, 3, dim))
    weights = rng.standard_normal((images, neurons, 3)) * np.array([3.0, 1.0, 0.5])
    offset = 2.0 * rng.standard_normal((1, neurons, dim))  # each neuron's mean effect
    return (offset + np.einsum("inb,nbd->ind", weights, basis) + 0.3 * rng.standard_normal((images, neurons, dim))).astype(np.float32)


def pcas(neurons_arr, top_k_pca):
    neurons_mean = neurons_arr.mean(axis=0)
    out, norms, tops = [], [], []
    for neuron in range(neurons_arr.shape[1]):
        current = neurons_arr[:, neuron] - neurons_mean[neuron]
        important = np.argsort(np.linalg.norm(current, axis=-1))[-top_k_pca:]
        current_important = current[important]
        norms.append(np.sort(np.linalg.norm(current, axis=-1))[-top_k_pca:])
        tops.append(important)
        u, s, vh = np.linalg.svd(current_important, full_matrices=False)
        how_many_positive = len(np.nonzero(1.0 * ((current_important @ vh[0]) > 0))[0])
        out.append(vh[0] if how_many_positive > top_k_pca // 2 else -vh[0])
    return np.stack(out), np.stack(norms), np.stack(tops), neurons_mean


for name, images in (("large", 150), ("small", 60)):
    e = effects(images, 6, 16)
    pca, norms, tops, mean = pcas(e, 100)
    np.save(os.path.join(here, f"{name}_effects.npy"), e)
    np.save(os.path.join(here, f"{name}_pca.npy"), pca.astype(np.float32))
    np.save(os.path.join(here, f"{name}_top_norms.npy"), norms.astype(np.float32))
    np.save(os.path.join(here, f"{name}_top_images.npy"), tops.astype(np.int64))

texts = rng.standard_normal((60, 16)).astype(np.float32)
texts /= np.linalg.norm(texts, axis=1, keepdims=True)
np.save(os.path.join(here, "texts.npy"), texts)
dictionary = texts - texts.mean(axis=0)
dictionary = 100.0 * dictionary / np.linalg.norm(dictionary, axis=0, keepdims=True)
pca = np.load(os.path.join(here, "large_pca.npy"))
coder = SparseCoder(transform_algorithm="omp", dictionary=dictionary, transform_alpha=1e-4, transform_n_nonzero_coefs=5)
np.save(os.path.join(here, "decomposition.npy"), np.ascontiguousarray(coder.transform(pca), dtype=np.float32))

# compute_ablations.py's arithmetic on validation effects, with the training statistics of "large".
train = np.load(os.path.join(here, "large_effects.npy"))
neurons_mean = train.mean(axis=0)
pcas = np.load(os.path.join(here, "large_pca.npy"))
norms = np.load(os.path.join(here, "large_top_norms.npy"))
# Validation effects from the training distribution: some neurons above their threshold, some below.
val = (train[rng.permutation(150)[:120]] + 0.2 * rng.standard_normal((120, 6, 16))).astype(np.float32)
output = rng.standard_normal((120, 16)).astype(np.float32)
classifier = rng.standard_normal((16, 5)).astype(np.float32)  # [d, classes] as the reference stores it
labels = rng.integers(0, 5, 120).astype(np.int64)
coefficient = 5.0  # (100 in the reference) small, so that the effects change predictions and every row differs
representation = coefficient * output / np.linalg.norm(output, axis=-1)[:, np.newaxis]
mlp_results = val
mlp_results_mean_ablated = mlp_results - neurons_mean[np.newaxis, :, :]
mlp_results_norm = np.linalg.norm(mlp_results_mean_ablated, axis=-1)
representation_wo_sig = representation - mlp_results.sum(axis=1) + neurons_mean.sum(axis=0)[np.newaxis, :]
without_neurons = representation_wo_sig @ classifier
representation_wo_insig = representation_wo_sig.copy()
representation_pc = representation_wo_sig.copy()
for b in range(val.shape[0]):
    indices = mlp_results_norm[b] > norms[:, 0]
    sig_sum = mlp_results_mean_ablated[b][indices].sum(axis=0)
    insig_sum = mlp_results_mean_ablated[b][np.logical_not(indices)].sum(axis=0)
    representation_wo_sig[b] += insig_sum
    representation_wo_insig[b] += sig_sum
    representation_pc[b] += (np.einsum("nd,nd->n", mlp_results_mean_ablated[b], pcas)[:, np.newaxis] * pcas).sum(axis=0)
zero = representation - mlp_results.sum(axis=1)  # vitscope's extra row
rows = [representation, representation - mlp_results.sum(axis=1) + neurons_mean.sum(axis=0)[np.newaxis, :], representation_wo_sig,
        representation_wo_insig, representation_pc, zero]
# Each image labelled by one row's prediction (image i by row i % 6), so every row scores differently.
labels = np.array([(rows[i % 6][i] @ classifier).argmax() for i in range(val.shape[0])], dtype=np.int64)
top1 = np.array([100.0 * np.mean((r @ classifier).argmax(axis=1) == labels) for r in rows], dtype=np.float32)
np.save(os.path.join(here, "val_effects.npy"), val)
np.save(os.path.join(here, "val_output.npy"), output)
np.save(os.path.join(here, "classifier.npy"), np.ascontiguousarray(classifier.T))
np.save(os.path.join(here, "val_labels.npy"), labels)
np.save(os.path.join(here, "ablation_top1.npy"), top1)
print("ablation top-1:", top1)
