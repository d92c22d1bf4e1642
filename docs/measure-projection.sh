#!/usr/bin/env bash
# The projector and the two-model comparison (issue 30) on the bundled shapes world: 500 scenes
# (seed 31) cached by shapes-clip, shapes-clip-spurious, shapes-vit and shapes-swin (the last two
# through the aligners beside them); `vitscope-cli compare` of shapes-clip vs shapes-clip-spurious
# and shapes-vit vs shapes-swin (and shapes-clip vs itself as the check); `vitscope-cli project`
# of the shapes-clip cache by each method with its wall time and the layout's trustworthiness
# (k = 10, sklearn's function on the cached outputs); then bench_projection's 100,000 points.
# Usage: docs/measure-projection.sh [WORK] [POINTS] (defaults /tmp/vitscope-projection, 100000).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-projection}
points=${2:-100000}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out scenes --count 500 --seed 31 >/dev/null 2>&1
for m in shapes-clip shapes-clip-spurious shapes-vit shapes-swin; do
  "$cli" cache build --model "$here/models/$m" --images scenes/images --out "cache-$m" >/dev/null 2>&1
done
compare() {  # A B
  "$cli" compare --model "$here/models/$1" --model "$here/models/$2" --cache-a "cache-$1" --cache-b "cache-$2" --out "cmp-$1-$2" >/dev/null 2>&1
  /usr/bin/python3 - "cmp-$1-$2" "$1" "$2" <<'PY'
import json, sys
import numpy as np
d, a, b = sys.argv[1:]
s = json.load(open(d + "/summary.json"))
cka = np.load(d + "/cka.npy")
pairs = [l.split() for l in open(d + "/assignment.txt")]
print(f"== {a} vs {b}: {s['heads_a']} x {s['heads_b']} heads over {s['images']} images")
print(f"mean CKA of the assigned pairs {s['mean_assigned_cka']:.3f}; matched to the same layer.head: {s['pairs_matched_to_the_same_position']};"
      f" same layer: {sum(p[0].split('.')[0] == p[1].split('.')[0] for p in pairs)}; all pairs: mean {cka.mean():.3f}, max {cka.max():.3f}")
print("assigned pairs, highest CKA first:", ", ".join(f"{p[0]}->{p[1]} {float(p[2]):.3f}" for p in sorted(pairs, key=lambda p: -float(p[2]))[:6]))
PY
}
compare shapes-clip shapes-clip
compare shapes-clip shapes-clip-spurious
compare shapes-vit shapes-swin
echo "== project: the shapes-clip cache (500 images, whole representation), wall time and trustworthiness (k 10)"
for method in pca umap tsne; do
  start=$(date +%s.%N)
  "$cli" project --cache cache-shapes-clip --method "$method" --seed 0 --out "layout-$method.npy" >/dev/null 2>&1
  end=$(date +%s.%N)
  /usr/bin/python3 -c '
import sys, numpy as np
from sklearn.manifold import trustworthiness
x, y = np.load("cache-shapes-clip/output.npy"), np.load(sys.argv[2])
print("%-5s %6.2f s  trustworthiness %.4f" % (sys.argv[1], float(sys.argv[3]), trustworthiness(x, y, n_neighbors=10)))
' "$method" "layout-$method.npy" "$(echo "$end - $start" | bc)"
done
echo "== bench_projection --points $points"
"$here/build/bin/bench_projection" --points "$points"
