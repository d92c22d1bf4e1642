#!/usr/bin/python3
"""Writes small point sets on which scikit-learn's Barnes-Hut TSNE (init='pca',
learning_rate='auto', its other defaults) stops before its 1,000 iterations, with the iteration it
stopped at (n_iter_) and its final KL divergence, for the test of vitscope's stopping rule.
Run: /usr/bin/python3 tests/data/projection/make_tsne_stop.py"""
import json
import os

import numpy as np
import sklearn
from sklearn.manifold import TSNE

here = os.path.dirname(os.path.abspath(__file__))


def main():
    rng = np.random.RandomState(0)
    cases = []
    for name, n, d, perplexity in [("stop_a", 20, 3, 5), ("stop_b", 60, 4, 20), ("stop_c", 100, 2, 30), ("stop_d", 40, 5, 10)]:
        x = rng.randn(n, d).astype(np.float32)
        np.save(os.path.join(here, name + ".npy"), x)
        t = TSNE(init="pca", learning_rate="auto", random_state=0, perplexity=perplexity).fit(x)
        cases.append({"points": name + ".npy", "perplexity": perplexity, "n_iter": int(t.n_iter_), "kl_divergence": float(t.kl_divergence_)})
    with open(os.path.join(here, "tsne_stop.json"), "w") as f:
        json.dump({"sklearn": sklearn.__version__, "cases": cases}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
