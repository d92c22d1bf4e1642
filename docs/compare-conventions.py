#!/usr/bin/python3
"""Compares two `vitscope-cli decompose` folders of the same images: one under --convention exact,
one under --convention vit-decompose (docs/measure-vit-decompose.sh runs both). Prints, for the
components both have (heads `l.h`, `mlp.l`, MaxViT `conv.k`), the range over components and images
of |vit-decompose term| / |exact term| and of their cosine, and each folder's sum identity and the
vit-decompose terms' miss of the model's output (summary.json). Plain python3.
Usage: compare-conventions.py EXACT_DIR VITDECOMPOSE_DIR"""
import json
import math
import struct
import sys


def read_npy(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<H", data[8:10])[0]
    header = data[10:10 + n].decode()
    shape = tuple(int(s) for s in header.split("'shape': (")[1].split(")")[0].split(",") if s.strip())
    count = 1
    for s in shape:
        count *= s
    values = struct.unpack("<%df" % count, data[10 + n:10 + n + 4 * count])
    return shape, values


def load(folder):
    shape, values = read_npy(folder + "/terms.npy")
    names = open(folder + "/components.txt").read().split()
    b, c, e = shape
    terms = {name: [values[(i * c + k) * e:(i * c + k + 1) * e] for i in range(b)] for k, name in enumerate(names)}
    return terms, json.load(open(folder + "/summary.json"))


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def main():
    exact, exact_summary = load(sys.argv[1])
    ref, ref_summary = load(sys.argv[2])
    for kind, test in (("heads", lambda n: n[0].isdigit()), ("mlps", lambda n: n.startswith("mlp.")), ("mbconvs", lambda n: n.startswith("conv."))):
        ratios, cosines = [], []
        for name in ref:
            if not test(name) or name not in exact:
                continue
            for a, b in zip(exact[name], ref[name]):
                ratios.append(norm(b) / norm(a))
                cosines.append(sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b)))
        if ratios:
            print("%-8s %4d terms: |vit-decompose| / |exact| %.3g-%.3g, cosine %.3f-%.3f" % (kind, len(ratios), min(ratios), max(ratios), min(cosines), max(cosines)))
    only = [n for n in exact if n not in ref]
    print("exact only: %s" % " ".join(only))
    print("vit-decompose only: %s" % " ".join(n for n in ref if n not in exact))
    print("exact: sum of terms vs output, max abs error %.3g" % exact_summary["max_abs_error"])
    print("vit-decompose: sum identity (its walker's value) %.3g; its terms miss the model's output by %.3f%% (max over images, relative)"
          % (ref_summary["max_abs_error"], 100 * ref_summary["output_miss"]))


if __name__ == "__main__":
    main()
