#!/usr/bin/python3
# Writes a tiny ImageNet validation ground truth in both layouts users have beside the flat folder
# of ILSVRC2012_val_NNNNNNNN.JPEG images:
# - ILSVRC2012_devkit_t12/data/meta.mat: MATLAB level 5, compressed (scipy.io.savemat, the reader
#   torchvision's parse_devkit_archive uses), a struct array `synsets` [N, 1] with the devkit's
#   fields (ILSVRC2012_ID, WNID, words, gloss, num_children, children, wordnet_height,
#   num_train_images): 4 leaf classes whose IDs are NOT in sorted-wnid order, and 2 inner synsets
#   (num_children > 0) listed after them, as the real file lists its 860 inner synsets after the
#   1,000 classes; plus ILSVRC2012_validation_ground_truth.txt, one ID per image in name order;
# - kaggle/LOC_val_solution.csv (ImageId,PredictionString, the image's boxes as "wnid x y x y")
#   and kaggle/LOC_synset_mapping.txt ("wnid words", sorted), of the same images.
# expected.json holds each image's label in the sorted-wnid order, the reader's answer.
# Run with Debian's python3 (python3-scipy, python3-numpy): /usr/bin/python3 make_devkit.py
import json
import os

import numpy as np
import scipy.io

here = os.path.dirname(os.path.abspath(__file__))
# (ILSVRC2012_ID, WNID, words): IDs in another order than the sorted wnids (n01 < n02 < n03 < n04).
classes = [(1, "n03000134", "chainlink fence"), (2, "n01440764", "tench, Tinca tinca"),
           (3, "n04004767", "printer"), (4, "n02102040", "English springer, English springer spaniel")]
inner = [(5, "n00001740", "entity", [2, 4]), (6, "n00002137", "abstraction, abstract entity", [1, 3])]
truth = [3, 2, 2, 4, 1, 3, 4, 1, 2]  # image k (1-based) has truth[k - 1]

dtype = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O"),
         ("children", "O"), ("wordnet_height", "O"), ("num_train_images", "O")]
synsets = np.zeros((len(classes) + len(inner), 1), dtype=dtype)
rows = [(i, w, words, [], 0) for i, w, words in classes] + [(i, w, words, ch, 1) for i, w, words, ch in inner]
for k, (i, wnid, words, children, height) in enumerate(rows):
    synsets[k, 0] = (np.array([[i]], dtype=np.uint16 if k % 2 else np.float64), wnid, words, "a gloss of " + words,
                     np.array([[float(len(children))]]), np.array(children, dtype=np.float64).reshape(1, -1),
                     np.array([[float(height)]]), np.array([[0.0 if children else 1300.0]]))
data = os.path.join(here, "ILSVRC2012_devkit_t12", "data")
os.makedirs(data, exist_ok=True)
scipy.io.savemat(os.path.join(data, "meta.mat"), {"synsets": synsets}, do_compression=True, format="5")
with open(os.path.join(data, "ILSVRC2012_validation_ground_truth.txt"), "w") as f:
    f.write("".join(f"{t}\n" for t in truth))

wnid_of_id = {i: w for i, w, _ in classes}
sorted_wnids = sorted(w for _, w, _ in classes)
kaggle = os.path.join(here, "kaggle")
os.makedirs(kaggle, exist_ok=True)
with open(os.path.join(kaggle, "LOC_val_solution.csv"), "w") as f:
    f.write("ImageId,PredictionString\n")
    for k in reversed(range(len(truth))):  # Kaggle's rows are not in name order
        w = wnid_of_id[truth[k]]
        f.write(f"ILSVRC2012_val_{k + 1:08d},{w} 10 20 110 120 {w} 5 5 50 60 \n")
with open(os.path.join(kaggle, "LOC_synset_mapping.txt"), "w") as f:
    for w in sorted_wnids:
        f.write(f"{w} {next(words for _, x, words in classes if x == w)}\n")

expected = {
    "wnids": sorted_wnids,
    "names": [next(words for _, x, words in classes if x == w).split(",")[0] for w in sorted_wnids],
    "labels": {f"ILSVRC2012_val_{k + 1:08d}": sorted_wnids.index(wnid_of_id[t]) for k, t in enumerate(truth)},
    "leaf_ids": [i for i, _, _ in classes],
    "leaf_wnids": [w for _, w, _ in classes],
}
with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)
    f.write("\n")
