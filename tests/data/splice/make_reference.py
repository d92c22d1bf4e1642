#!/usr/bin/python3
"""SpLiCE reference outputs for tests/test_splice.cpp, computed as AI4LIFE-GROUP/SpLiCE computes
them (splice/splice.py load(): the dictionary; splice/model.py SPLICE with solver 'skl':
encode_image, decompose, recompose_image, return_cosine), on seeded built data.

Run with /usr/bin/python3 (torch, numpy, scikit-learn) from this folder:
    /usr/bin/python3 make_reference.py
Writes vocab.npy [V, E] (raw text embeddings), mean.npy [E] (dataset mean of normalised image
embeddings), embeddings.npy [B, E] (raw image embeddings), and per l1 value in reference.json
weights_<k>.npy [B, V] and cosine_<k>.npy [B] (per image; the reference sums it over the batch), and
weights64_<k>.npy: sklearn's solution of the same problems in float64.
"""
import json
import warnings

import numpy as np
import torch
from sklearn import linear_model

E, V, B, N = 48, 100, 6, 200
L1 = [0.01, 0.15, 0.3, 4.0]  # the reference's default, two of its examples' values, and one past max(2 D y): all zero

warnings.filterwarnings("ignore", message="Objective did not converge")  # recorded in reference.json
rng = np.random.default_rng(31)
vocab = rng.normal(size=(V, E)) + 0.8 * rng.normal(size=(1, E))  # a shared offset, as text embeddings have
offset = rng.normal(size=(1, E))
dataset = offset + 0.6 * rng.normal(size=(N, E))
# Images: the dataset offset plus a few vocabulary directions and noise.
codes = np.zeros((B, V))
for b in range(B):
    codes[b, rng.choice(V, size=4, replace=False)] = rng.uniform(0.3, 1.0, size=4)
images = offset + codes @ (vocab / np.linalg.norm(vocab, axis=1, keepdims=True)) + 0.2 * rng.normal(size=(B, E))

vocab = torch.tensor(vocab, dtype=torch.float32)
dataset = torch.tensor(dataset, dtype=torch.float32)
images = torch.tensor(images, dtype=torch.float32)
normalize = torch.nn.functional.normalize

# splice.load(): concepts = normalize(stack(text embeddings)); normalize(concepts - mean(concepts))
concepts = normalize(vocab, dim=1)
dictionary = normalize(concepts - torch.mean(concepts, dim=0), dim=1)
image_mean = torch.mean(normalize(dataset, dim=1), dim=0)  # a mean of L2-normalised embeddings

record = {"l1": L1, "E": E, "V": V, "B": B, "sklearn_dtype": "float32 (the reference passes float32 tensors' numpy arrays)"}
for k, l1 in enumerate(L1):
    # SPLICE.__init__ (solver 'skl'): l1_penalty / (2 * image_mean.shape[0])
    alpha = l1 / (2 * image_mean.shape[0])
    # encode_image
    image = normalize(images, dim=1)
    centered = normalize(image - image_mean, dim=1)
    # decompose
    clf = linear_model.Lasso(alpha=alpha, fit_intercept=False, positive=True, max_iter=10000, tol=1e-6)
    rows, iters = [], []
    for i in range(centered.shape[0]):
        clf.fit(dictionary.T.cpu().numpy(), centered[i, :].cpu().numpy())
        rows.append(torch.tensor(clf.coef_))
        iters.append(int(clf.n_iter_))
    weights = torch.stack(rows, dim=0)
    # The same fits in float64: the reference's float32 run stops where float32 lets it (at l1 =
    # 0.01 one image reaches max_iter); vitscope solves in double and is held to this closely.
    rows64 = []
    for i in range(centered.shape[0]):
        clf.fit(dictionary.T.double().numpy(), centered[i, :].double().numpy())
        rows64.append(clf.coef_.copy())
    np.save(f"weights64_{k}.npy", np.stack(rows64).astype(np.float64))
    # recompose_image and the cosine (per image)
    recon = normalize(weights @ dictionary, dim=1)
    recon = normalize(recon + image_mean, dim=1)
    cosine = torch.diag(recon @ image.T)
    np.save(f"weights_{k}.npy", weights.numpy().astype(np.float32))
    np.save(f"cosine_{k}.npy", cosine.numpy().astype(np.float32))
    record[f"iterations_{k}"] = iters
    record[f"converged_{k}"] = [n < 10000 for n in iters]
    record[f"nonzero_{k}"] = [int((r > 0).sum()) for r in rows]

np.save("vocab.npy", vocab.numpy())
np.save("mean.npy", image_mean.numpy())
np.save("embeddings.npy", images.numpy())
with open("reference.json", "w") as f:
    json.dump(record, f, indent=1)
    f.write("\n")
