#!/usr/bin/python3
"""Compares two `vitscope-cli decompose` folders of the same images: one under --convention exact,
one under --convention vit-decompose (docs/measure-vit-decompose.sh runs both). Prints, for the
components both have (heads `l.h`, `mlp.l`, MaxViT `conv.k`), the range over components and images
of |vit-decompose term| / |exact term| and of their cosine, and each folder's sum identity and the
vit-decompose terms' miss of the model's output (summary.json). Plain python3.
With a third folder (vit-decompose with another --from-block), also how much the heads both
vit-decompose runs have change with the detach block (their shares of every LayerNorm offset and
bias depend on how many terms there are).
Usage: compare-conventions.py EXACT_DIR VITDECOMPOSE_DIR [VITDECOMPOSE_OTHER_BLOCK_DIR]"""
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
        ratios, cosines, gaps = [], [], []
        for name in ref:
            if not test(name) or name not in exact:
                continue
            for a, b in zip(exact[name], ref[name]):
                ratios.append(norm(b) / norm(a))
                gaps.append(norm([y - x for x, y in zip(a, b)]) / norm(a))
                cosines.append(sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b)))
        if ratios:
            print("%-8s %4d terms: |vit-decompose| / |exact| %.3g-%.3g, |vit-decompose - exact| / |exact| %.3g-%.3g, cosine %.3f-%.3f"
                  % (kind, len(ratios), min(ratios), max(ratios), min(gaps), max(gaps), min(cosines), max(cosines)))
    only = [n for n in exact if n not in ref]
    print("exact only: %s" % " ".join(only))
    print("vit-decompose only: %s" % " ".join(n for n in ref if n not in exact))
    shape, out = read_npy(sys.argv[2] + "/output.npy")
    misses = []
    for i in range(shape[0]):
        o = out[i * shape[1]:(i + 1) * shape[1]]
        total = [sum(ref[n][i][c] for n in ref) for c in range(shape[1])]
        misses.append(norm([t - x for t, x in zip(total, o)]) / norm(o))
    print("vit-decompose: |sum of terms - output| / |output| per image: %s (mean %.3f%%)"
          % (" ".join("%.3f%%" % (100 * m) for m in misses), 100 * sum(misses) / len(misses)))
    if len(sys.argv) > 3:
        other, other_summary = load(sys.argv[3])
        gaps, cosines = [], []
        for name in other:
            if name[0].isdigit() and name in ref:
                for a, b in zip(ref[name], other[name]):
                    gaps.append(norm([y - x for x, y in zip(a, b)]) / norm(a))
                    cosines.append(sum(x * y for x, y in zip(a, b)) / (norm(a) * norm(b)))
        print("the same %d head terms with --from-block %s instead of 0,0: |change| / |term| %.3g-%.3g, cosine %.3f-%.3f"
              % (len(gaps), ",".join(str(v) for v in other_summary["from_block"]), min(gaps), max(gaps), min(cosines), max(cosines)))
    print("exact: sum of terms vs output, max abs error %.3g" % exact_summary["max_abs_error"])
    print("vit-decompose: sum identity (its walker's value) %.3g; its terms miss the model's output by %.3f%% (max over images, relative)"
          % (ref_summary["max_abs_error"], 100 * ref_summary["output_miss"]))


if __name__ == "__main__":
    main()
