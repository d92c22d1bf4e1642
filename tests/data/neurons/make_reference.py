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
    return (np.einsum("inb,nbd->ind", weights, basis) + 0.3 * rng.standard_normal((images, neurons, dim))).astype(np.float32)


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
