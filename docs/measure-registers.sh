#!/usr/bin/env bash
# High-norm outlier tokens and test-time registers (vitscope-cli registers, --test-time-registers)
# on the bundled plain ViTs: 200 generated scenes (seed 29), per block the max / median patch-norm
# ratio and how many scenes have a token above the reference's threshold; the register neurons
# the reference's ranking finds at its defaults; one scene's norm maps before and after the
# intervention, and the intervened model's embedding / decomposition / heatmap.
# Usage: docs/measure-registers.sh [WORK] (default /tmp/vitscope-registers).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-registers}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes generate --out scenes --count 200 --seed 29 >/dev/null 2>&1
table() {  # summary.json -> one row per block
  /usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
print("| block | mean max/median | largest max/median | scenes with a token > %g |" % j["register_norm_threshold"])
print("|---|---|---|---|")
for l in j["layers"]:
    print("| %d | %.2f | %.2f | %.1f%% |" % (l["layer"], l["mean_max_over_median"], l["largest_max_over_median"], 100 * l["images_with_token_above_threshold"]))
' "$1"
}
for m in shapes-clip shapes-clip-spurious shapes-vit; do
  "$cli" registers norms --model "$here/models/$m" --images scenes --count 200 --out "norms-$m" >/dev/null 2>&1
  echo "== $m: token norms over 200 scenes"
  table "norms-$m/summary.json"
done
scene=scenes/images/$(ls scenes/images | head -1)
"$cli" registers find --model "$here/models/shapes-clip" --images scenes --processed-image-cnt 200 --out clip-neurons.txt 2>/dev/null |
  /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin); print("== registers find, shapes-clip:", j["images_with_outliers"], "of", j["images"], "scenes kept; top:", ", ".join("%s (%.3f)" % (t["neuron"], t["score"]) for t in j["top"][:5]))'
ttr=(--test-time-registers 1 --register-neurons clip-neurons.txt)
"$cli" registers norms --model "$here/models/shapes-clip" --image "$scene" --out one >/dev/null 2>&1
"$cli" registers norms --model "$here/models/shapes-clip" --image "$scene" --out one-ttr "${ttr[@]}" >/dev/null 2>&1
/usr/bin/python3 -c '
import json
a, b = json.load(open("one/attention.json")), json.load(open("one-ttr/attention.json"))
print("== one scene (shapes-clip): block, max/median, class-token attention to the threshold tokens; with 1 test-time register: the same and the register norm")
for x, y in zip(a["layers"], b["layers"]):
    print("  %d: %.2f %.3f | %.2f %.3f register %.1f" % (x["layer"], x["max_over_median"], x["cls_attention_to_outliers"], y["max_over_median"], y["cls_attention_to_outliers"], y["register_token_norms"][0]))
'
"$cli" embed --model "$here/models/shapes-clip" --image "$scene" --out embed >/dev/null 2>&1
"$cli" embed --model "$here/models/shapes-clip" --image "$scene" --out embed-ttr "${ttr[@]}" >/dev/null 2>&1
"$cli" decompose --model "$here/models/shapes-clip" --image "$scene" --tokens --out decompose-ttr "${ttr[@]}" 2>/dev/null |
  /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin); print("== decompose with 1 test-time register: heads", j["heads_shape"], "max |sum - output|", j["max_abs_error"])'
/usr/bin/python3 -c '
import numpy as np
a, b = np.load("embed/image_embeds.npy"), np.load("embed-ttr/image_embeds.npy")
print("== embedding cosine, plain vs test-time-register model: %.4f" % float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)))
'
"$cli" -v heatmap --model "$here/models/shapes-clip" --image "$scene" --text "a red circle" --out heatmap-ttr.png "${ttr[@]}" 2>&1 | grep -o "test-time register tokens.*" || true
