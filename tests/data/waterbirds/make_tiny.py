#!/usr/bin/python3
# Writes the tiny Waterbirds data the tests read, in both layouts the references read, and the
# expected figures of a port of both references' evaluation code on fixed arrays.
#
# groupdro/: group-DRO's layout (waterbird_complete95_forest2water2): metadata.csv with the columns
#   img_id,img_filename,y,split,place,place_filename (split 0/1/2 = train/val/test; y 0 landbird,
#   1 waterbird; place 0 land, 1 water), images at img_filename (CUB-style species folders).
# folders/: vit-decompose's archives (datasets/clean_waterbirds.py, an ImageFolder): one folder
#   per class, the place the last '_' field of the file name ("..._water.png").
# port/: fixed per-component arrays (the reference's own shapes: attns [b, l, h, d], mlps
#   [b, l + 1, d] with the embedding first, classifier [d, 2], labels [b, 2] = (y, place), the
#   spurious and core word embeddings [k, d]) and expected.json: what
#   clip_text_span compute_use_specific_heads.py (full_accuracy, Baseline / Replaced) and
#   vit-decompose zs_spur_correlation.py (variance_attributed ranking, mitigate_spur,
#   get_group_accuracies, worst / average group) compute on them, ported to numpy here.
# Run with Debian's python3 (python3-numpy): /usr/bin/python3 make_tiny.py
import json
import os
import struct
import zlib

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261206)


def write_png(path, rgb):
    """A minimal PNG writer (8-bit RGB, no filter)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def scene(y, place):
    """A bird-ish blob (dark for landbirds, white for waterbirds) on green land or blue water."""
    img = np.zeros((40, 48, 3), np.int32)
    img[:] = (40, 90 + rng.integers(0, 30), 200) if place == 1 else (60, 140 + rng.integers(0, 30), 50)
    yy, xx = np.mgrid[0:40, 0:48]
    blob = (yy - 20) ** 2 / 64 + (xx - 24) ** 2 / 144 <= 1
    img[blob] = (235, 235, 225) if y == 1 else (90, 60, 30)
    return np.clip(img + rng.integers(-6, 7, img.shape), 0, 255)


# ---- groupdro/ ----
species = {0: "094.White_breasted_Nuthatch", 1: "086.Pacific_Loon"}
places = {0: "/b/bamboo_forest/", 1: "/o/ocean/"}
rows = []
# (y, split, place): the test split holds every group, train and val a few rows.
plan = [(0, 0, 0), (1, 0, 1), (0, 1, 0), (1, 1, 1)] + [(y, 2, p) for y in (0, 1) for p in (0, 1) for _ in range(2)]
for i, (y, split, place) in enumerate(plan, start=1):
    name = f"{species[y]}/{species[y].split('.')[1]}_{i:04d}.png"
    write_png(os.path.join(here, "groupdro", name), scene(y, place))
    rows.append(f"{i},{name},{y},{split},{place},{places[place]}{i:08d}.jpg")
with open(os.path.join(here, "groupdro", "metadata.csv"), "w") as f:
    f.write("img_id,img_filename,y,split,place,place_filename\n" + "\n".join(rows) + "\n")

# ---- folders/ ----
for i, (y, place) in enumerate([(y, p) for y in (0, 1) for p in (0, 1)]):
    cls = ["landbird", "waterbird"][y]
    write_png(os.path.join(here, "folders", cls, f"bird_{i:03d}_{['land', 'water'][place]}.png"), scene(y, place))

# ---- port/: the references' evaluation on fixed arrays ----
b, L, H, d = 32, 6, 3, 8
labels = np.stack([np.repeat([0, 1], b // 2), np.tile([0, 0, 0, 1, 1, 1, 1, 0], b // 8)], axis=1).astype(np.int64)
attns = rng.normal(size=(b, L, H, d)).astype(np.float32)
mlps = rng.normal(size=(b, L + 1, d)).astype(np.float32)
classifier = rng.normal(size=(d, 2)).astype(np.float32)
classifier /= np.linalg.norm(classifier, axis=0, keepdims=True)
# The background leaks into a few components, so that ablating them changes the groups.
attns[:, 5, 1, :] += 1.5 * (labels[:, 1:2] * 2 - 1) * classifier[:, 1] - 0.5 * classifier[:, 0]
mlps[:, 3, :] += 0.8 * (labels[:, 1:2] * 2 - 1) * classifier[:, 1]
spurious = rng.normal(size=(3, d)).astype(np.float32)
spurious[0] = classifier[:, 1] + 0.1 * spurious[0]
core = rng.normal(size=(2, d)).astype(np.float32)
spurious /= np.linalg.norm(spurious, axis=1, keepdims=True)
core /= np.linalg.norm(core, axis=1, keepdims=True)
listed = [(5, 1), (4, 2)]


def top1(scores, target):
    return float((scores.argmax(1) == target).mean())


def full_accuracy(scores, y, place):
    """clip_text_span compute_use_specific_heads.py full_accuracy, in percent."""
    accs = {}
    for i in (0, 1):
        for j in (0, 1):
            locs = (y == i) & (place == j)
            accs[f"({i}, {j})"] = top1(scores[locs], y[locs]) * 100
    accs["full"] = top1(scores, y) * 100
    return accs


def textspan_protocol(attns, mlps):
    attns, mlps = attns.copy(), mlps.copy()
    baseline = attns.sum(axis=(1, 2)) + mlps.sum(axis=1)
    before = full_accuracy(baseline @ classifier, labels[:, 0], labels[:, 1])
    for layer, head in listed:
        attns[:, layer, head] = attns[:, layer, head].mean(axis=0, keepdims=True)
    for layer in range(attns.shape[1] - 4):
        attns[:, layer] = attns[:, layer].mean(axis=0, keepdims=True)
    mlps[:] = mlps.mean(axis=0, keepdims=True)
    ablated = attns.sum(axis=(1, 2)) + mlps.sum(axis=1)
    return before, full_accuracy(ablated @ classifier, labels[:, 0], labels[:, 1])


def variance_attributed(decomp, bases):
    """vit-decompose helpers/decompose_utils.py variance_attributed (normalize=True)."""
    q = np.linalg.qr(bases.T)[0].T
    total = decomp.sum(0) @ q.T
    total = total - total.mean(0)
    score = decomp @ q.T
    score = score - score.mean(axis=1, keepdims=True)
    covar = (total[None] * score).mean(axis=1)
    covar = covar / (total[None].std(axis=1, ddof=1) * score.std(axis=1, ddof=1))
    return covar.mean(-1)


def group_accuracies(decomp):
    scores = decomp.sum(0) @ classifier
    y, place = labels[:, 0], labels[:, 1]
    groups = {"landbird_on_land": (0, 0), "landbird_on_water": (0, 1), "waterbird_on_land": (1, 0), "waterbird_on_water": (1, 1)}
    acc = {k: top1(scores[(y == i) & (place == j)], y[(y == i) & (place == j)]) for k, (i, j) in groups.items()}
    acc["worst_group"] = min(acc[k] for k in groups)
    acc["average_group"] = float(np.mean([acc[k] for k in groups]))
    return acc


names = [f"{l}.{h}" for l in range(L) for h in range(H)] + ["embed"] + [f"mlp.{l}" for l in range(L)]
decomp = np.concatenate([attns.reshape(b, L * H, d).transpose(1, 0, 2), mlps.transpose(1, 0, 2)], axis=0)  # [C, b, d]
diff = variance_attributed(decomp, spurious) - variance_attributed(decomp, core)
order = np.argsort(-diff, kind="stable")
top = order[:3]
mitigated = decomp.copy()
mitigated[top] = mitigated[top].mean(axis=1, keepdims=True)
baseline, replaced = textspan_protocol(attns, mlps)
port = os.path.join(here, "port")
os.makedirs(port, exist_ok=True)
for name, arr in [("attns", attns), ("mlps", mlps), ("classifier", classifier), ("labels", labels), ("spurious", spurious), ("core", core)]:
    np.save(os.path.join(port, name + ".npy"), arr)
expected = {
    "textspan": {"heads": [f"{l}.{h}" for l, h in listed], "Baseline": baseline, "Replaced": replaced},
    "vit_decompose": {"top": [names[i] for i in top], "score_difference": [float(diff[i]) for i in top],
                      "before": group_accuracies(decomp), "after": group_accuracies(mitigated)},
}
with open(os.path.join(port, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print(json.dumps(expected, indent=1))
