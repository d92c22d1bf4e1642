#!/usr/bin/python3
# Writes tiny.mat: a few scenes in the layout of Guillaumin et al.'s ImageNet segmentation file
# (gtsegs_ijcv.mat, MATLAB 7.3): HDF5 behind a 512-byte user block; /value/img and /value/gt are
# [N, 1] datasets of object references into /#refs#; an image is uint8 [3, W, H] (MATLAB's column
# order, so a reader transposes it to H x W x 3), a mask is a [1, 1] cell of references to a
# [W, H] uint8 0/1 array. expected.json holds, per scene, its size and the SHA-256 of its pixels
# as the references' reader (utils/imagenet_segmentation.py) returns them (H x W x 3 and H x W,
# row-major), so a reader test checks every transpose.
# Run with Debian's python3 (python3-h5py, python3-numpy): /usr/bin/python3 make_mat.py
import hashlib
import json
import os

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20261206)

# Each scene: a grey, slightly noisy background and one coloured disc or square (the object).
scenes = [(48, 64, "disc", (220, 40, 40)), (72, 56, "square", (40, 60, 220)), (64, 64, "disc", (40, 200, 60))]
images, masks = [], []
for h, w, kind, colour in scenes:
    img = (120 + rng.integers(-12, 13, size=(h, w, 3))).astype(np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx, r = h * 0.55, w * 0.45, min(h, w) * 0.28
    if kind == "disc":
        obj = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    else:
        obj = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
    img[obj] = colour
    images.append(img)
    masks.append(obj.astype(np.uint8))

path = os.path.join(here, "tiny.mat")
with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
    refs = f.create_group("#refs#")
    value = f.create_group("value")
    ref_type = h5py.special_dtype(ref=h5py.Reference)
    img_refs = value.create_dataset("img", (len(scenes), 1), dtype=ref_type)
    gt_refs = value.create_dataset("gt", (len(scenes), 1), dtype=ref_type)
    for i, (img, mask) in enumerate(zip(images, masks)):
        stored = refs.create_dataset("img%d" % i, data=img.transpose((2, 1, 0)))  # [3, W, H]
        img_refs[i, 0] = stored.ref
        array = refs.create_dataset("mask%d" % i, data=mask.transpose((1, 0)))  # [W, H]
        cell = refs.create_dataset("cell%d" % i, (1, 1), dtype=ref_type)
        cell[0, 0] = array.ref
        gt_refs[i, 0] = cell.ref
with open(path, "r+b") as f:  # MATLAB's header text in the user block
    f.write(b"MATLAB 7.3 MAT-file, written by tests/data/imagenet-seg/make_mat.py".ljust(116, b" "))

expected = {
    "file_sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
    "scenes": [
        {"height": int(img.shape[0]), "width": int(img.shape[1]),
         "image_sha256": hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest(),
         "mask_sha256": hashlib.sha256(np.ascontiguousarray(mask).tobytes()).hexdigest(),
         "object_pixels": int(mask.sum())}
        for img, mask in zip(images, masks)
    ],
}
with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
print(path)
