#!/usr/bin/env bash
# The figures of models/shapes-clip-planted/card.md: the derivation (same bytes as the shipped
# file), zero-shot accuracy before / after, per-block token norms over 200 scenes (seed 29),
# registers find at the card's threshold (100) and at the reference's (30), the test-time register's
# effect on the norms and on the embedding (200 scenes), and the property neuron's rank and texts
# (second-order effects of 2,000 scenes, seed 4242).
# Usage: docs/measure-planted.sh [WORK] (default /tmp/vitscope-planted).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=${VITSCOPE_CLI:-$here/build/bin/vitscope-cli}
base="$here/models/shapes-clip"
model="$here/models/shapes-clip-planted"
work=${1:-/tmp/vitscope-planted}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
start=$(date +%s.%N)
VITSCOPE_THREADS=1 "$cli" shapes plant --model "$base" --out derived
echo "== derived in $(echo "$(date +%s.%N) - $start" | bc) s; same bytes as the shipped model: $(cmp -s derived/open_clip_model.safetensors "$model/open_clip_model.safetensors" && echo yes || echo NO)"
reg=$(/usr/bin/python3 -c 'import json; print(json.load(open("'"$model"'/planted.json"))["register_neuron"]["name"])')
prop=$(/usr/bin/python3 -c 'import json; j = json.load(open("'"$model"'/planted.json"))["property_neuron"]; print(j["layer"], j["neuron"])')
echo "$reg" > planted-register.txt
for m in "$base" "$model"; do
  echo "== zero-shot, $(basename "$m")"
  "$cli" shapes evaluate --model "$m" --count 2000 | tail -6
done
"$cli" shapes generate --out scenes --count 200 --seed 29 >/dev/null 2>&1
for m in "$base" "$model"; do
  "$cli" registers norms --model "$m" --images scenes --count 200 --out "norms-$(basename "$m")" >/dev/null 2>&1
  echo "== token norms over 200 scenes, $(basename "$m"): block, mean max/median, largest max/median, scenes with a token > 30"
  /usr/bin/python3 -c '
import json, sys
for l in json.load(open(sys.argv[1]))["layers"]:
    print("  %d: %.2f %.2f %.1f%%" % (l["layer"], l["mean_max_over_median"], l["largest_max_over_median"], 100 * l["images_with_token_above_threshold"]))
' "norms-$(basename "$m")/summary.json"
done
for t in 100 30; do
  "$cli" registers find --model "$model" --images scenes --register-norm-threshold $t --out "find-$t.txt" 2>/dev/null |
    /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin); print("== registers find, threshold '$t':", j["images_with_outliers"], "of", j["images"], "scenes kept; top:", ", ".join("%s (%.3f)" % (t["neuron"], t["score"]) for t in j["top"][:5]))'
done
ttr=(--test-time-registers 1 --register-neurons planted-register.txt --register-top-k 1)
"$cli" registers norms --model "$model" --images scenes --count 200 --out norms-ttr "${ttr[@]}" >/dev/null 2>&1
echo "== with 1 test-time register (the planted neuron): block, mean max/median, largest max/median"
/usr/bin/python3 -c '
import json
for l in json.load(open("norms-ttr/summary.json"))["layers"]:
    print("  %d: %.2f %.2f" % (l["layer"], l["mean_max_over_median"], l["largest_max_over_median"]))
'
"$cli" embed --model "$model" --image scenes/images/*.png --out embed >/dev/null 2>&1
"$cli" embed --model "$model" --image scenes/images/*.png --out embed-ttr "${ttr[@]}" >/dev/null 2>&1
"$cli" embed --model "$base" --image scenes/images/*.png --out embed-base >/dev/null 2>&1
/usr/bin/python3 -c '
import numpy as np
def cos(a, b): return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
a, b, c = np.load("embed/image_embeds.npy"), np.load("embed-ttr/image_embeds.npy"), np.load("embed-base/image_embeds.npy")
print("== embedding cosine over 200 scenes (mean / min): planted vs test-time register %.4f / %.4f; planted vs shapes-clip %.4f / %.4f" % (cos(a, b).mean(), cos(a, b).min(), cos(a, c).mean(), cos(a, c).min()))
'
set -- $prop
"$cli" shapes generate --out train --count 2000 --seed 4242 >/dev/null 2>&1
"$cli" shapes text-resources --out texts >/dev/null
"$cli" second-order --model "$model" --image train/images/*.png --layer "$1" --batch 64 --out so >/dev/null 2>&1
printf 'red\n' > red.txt
for p in red.txt texts/color.txt; do
  "$cli" neurons rank --model "$model" --effects so --texts "$p" --out "rank-$(basename "$p" .txt).csv" >/dev/null 2>&1
  echo "== neurons rank (layer $1) for $p: planted neuron $2 is rank $(grep ",$2,$1," "rank-$(basename "$p" .txt).csv" | cut -d, -f1) ($(grep ",$2,$1," "rank-$(basename "$p" .txt).csv" | cut -d, -f4)); best: $(sed -n '2,4p' "rank-$(basename "$p" .txt).csv" | cut -d, -f2,4 | tr '\n' ' ')"
done
"$cli" neurons describe --model "$model" --effects so --texts texts/text_pool.txt --components 8 --show 3 --out desc >/dev/null 2>&1
echo "== neurons describe, the planted neuron: $(grep "^| $2 |" desc/neurons.md)"
echo "   its row among $(grep -c '^| [0-9]' desc/neurons.md) (largest centred effect first): $(grep '^| [0-9]' desc/neurons.md | grep -n "^| $2 |" | cut -d: -f1)"
