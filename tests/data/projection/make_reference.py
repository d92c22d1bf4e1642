#!/usr/bin/python3
"""Writes the projector's test data: two point sets (Gaussian blobs, a noisy swiss roll in 20
dimensions), numpy's SVD-based PCA of the blobs, sklearn's trustworthiness of a fixed layout, and
the trustworthiness (k = 10) of the layouts the reference implementations make with their
defaults: umap-learn's UMAP and sklearn's Barnes-Hut TSNE (init='pca', learning_rate='auto'),
each for seeds 0 and 1. Also umap-learn's find_ab_params for the default spread / min_dist.
Needs Debian's python3-numpy, python3-sklearn and umap-learn (the last for this generator only).
Run: /usr/bin/python3 tests/data/projection/make_reference.py"""
import json
import os
import warnings

import numpy as np
import sklearn
import umap
from sklearn.datasets import make_blobs, make_swiss_roll
from sklearn.manifold import TSNE, trustworthiness
from umap.umap_ import find_ab_params

warnings.filterwarnings("ignore")
here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.RandomState(2030)


def datasets():
    blobs, _ = make_blobs(n_samples=600, n_features=32, centers=6, cluster_std=2.0, random_state=0)
    roll, _ = make_swiss_roll(800, noise=0.3, random_state=2)
    basis, _ = np.linalg.qr(rng.randn(20, 3))
    roll = roll @ basis.T + 0.05 * rng.randn(800, 20)
    return {"blobs": blobs.astype(np.float32), "roll": roll.astype(np.float32)}


def numpy_pca(x, k):
    centred = x.astype(np.float64) - x.astype(np.float64).mean(0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    return u[:, :k] * s[:k]


def main():
    sets = datasets()
    out = {"versions": {"sklearn": sklearn.__version__, "umap-learn": umap.__version__, "numpy": np.__version__}}
    out["umap_ab"] = list(find_ab_params(1.0, 0.1))
    for name, x in sets.items():
        np.save(os.path.join(here, name + ".npy"), x)
        ref = {"umap": [], "tsne": []}
        for seed in (0, 1):
            ref["umap"].append(trustworthiness(x, umap.UMAP(random_state=seed).fit_transform(x), n_neighbors=10))
            layout = TSNE(random_state=seed, init="pca", learning_rate="auto").fit_transform(x)
            ref["tsne"].append(trustworthiness(x, layout, n_neighbors=10))
        out[name] = ref
    blobs = sets["blobs"]
    np.save(os.path.join(here, "blobs_pca.npy"), numpy_pca(blobs, 2).astype(np.float64))
    # A fixed layout (a random linear map plus noise) and sklearn's trustworthiness of it.
    layout = (blobs @ rng.randn(32, 2) + 5 * rng.randn(600, 2)).astype(np.float32)
    np.save(os.path.join(here, "blobs_layout.npy"), layout)
    out["layout_trustworthiness"] = {str(k): trustworthiness(blobs, layout, n_neighbors=k) for k in (5, 10)}
    with open(os.path.join(here, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
