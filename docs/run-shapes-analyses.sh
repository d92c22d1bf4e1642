#!/usr/bin/env bash
# Runs every analysis of vitscope-cli on the bundled shapes models and held-out shapes data, and
# prints the figures that docs/results-analyses.md reports. Usage: docs/run-shapes-analyses.sh [WORK]
# (WORK defaults to /tmp/vitscope-analyses; about 3 minutes on 2 cores).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
clip="$here/models/shapes-clip"
vit="$here/models/shapes-vit"
swin="$here/models/shapes-swin"
spur="$here/models/shapes-clip-spurious"
work=${1:-/tmp/vitscope-analyses}
rm -rf "$work" && mkdir -p "$work"
cd "$work"

echo "== data (seeds never used for training)"
"$cli" shapes generate --out test --count 2000 --seed 9101 >/dev/null 2>&1
"$cli" shapes generate --out sp-train --count 2000 --seed 9102 --split spurious-train >/dev/null 2>&1
"$cli" shapes generate --out sp-test --count 2000 --seed 9103 --split spurious-test >/dev/null 2>&1

echo "== caches"
"$cli" cache build --model "$clip" --images test/images --out cache-clip 2>/dev/null
"$cli" cache build --model "$vit" --images test/images --out cache-vit 2>/dev/null
"$cli" cache build --model "$swin" --images test/images --out cache-swin 2>/dev/null
"$cli" cache build --model "$clip" --images sp-train/images --out cache-sp-train 2>/dev/null
"$cli" cache build --model "$clip" --images sp-test/images --out cache-sp-test 2>/dev/null

echo "== head specialisation (last 2 layers)"
"$cli" shapes specialisation --model "$clip" --count 2000 --last 2

echo "== TextSpan (shapes-clip, world text pool, 3 texts per head; reference algorithm, rank 80, last 4 layers)"
"$cli" textspan --cache cache-clip --texts "$here/resources/shapes/text_pool.txt" --per-head 3 --out textspan-clip.json 2>/dev/null
echo "== TextSpan's accuracy check (reference protocol: earlier layers' heads mean-ablated, described heads reduced to their spans)"
for c in red orange yellow green cyan blue purple pink; do printf '%s\ta %s object\n' $c $c; done > colors.tsv
for s in circle square triangle hexagon star heart diamond cross; do printf '%s\ta %s\n' $s $s; done > shapes.tsv
for spec in "3 last:4 color colors" "3 last:4 shape shapes" "10 last:4 shape shapes" "3 last:2 color colors" "3 last:2 shape shapes"; do
  set -- $spec
  echo "-- $1 texts per head, layers $2, $3"
  "$cli" textspan --cache cache-clip --texts "$here/resources/shapes/text_pool.txt" --per-head "$1" --layers "$2" \
    --labels test/labels.csv --label-column "$3" --classes "$4.tsv" --out "ts-check-$1-$2-$3.json" 2>/dev/null | grep accuracy
done

echo "== property ranking (shapes-clip)"
for p in color shape position texture background; do
  echo "-- $p"
  "$cli" rank --cache cache-clip --property "$p" --out "rank-clip-$p.csv" 2>/dev/null | head -4
done

echo "== retrieval by a color phrase: restricted to the top 3 color components vs global, top 20"
for c in red green blue yellow; do
  "$cli" retrieve --cache cache-clip --text "a $c object" --property color --top-components 3 --top 20 --out "retrieve-$c.json" >/dev/null 2>&1
  python3 - "$c" "retrieve-$c.json" test/labels.csv <<'PY'
import csv, json, os, sys
color, result, labels = sys.argv[1:4]
rows = {os.path.basename(r["file"]): r for r in csv.DictReader(open(labels))}
j = json.load(open(result))
for kind in ("restricted", "global"):
    hits = [rows[os.path.basename(h["path"])] for h in j[kind]]
    share = sum(h["color"] == color for h in hits) / len(hits)
    print(f"{color:7s} {kind:10s} heads {','.join(j['components']) if kind == 'restricted' else '-':12s} "
          f"{100 * share:5.1f}% {color}, {len(set(h['shape'] for h in hits))} shapes")
PY
done

echo "== heatmap localisation (500 images, prompt 'a {color} object')"
"$cli" evaluate-heatmaps --model "$clip" --dataset test --count 500 --prompt "a {color} object" --out heatmaps-clip.csv 2>/dev/null
echo "== the same, each prompt's own map (no class-prompt mean subtracted)"
"$cli" evaluate-heatmaps --model "$clip" --dataset test --count 500 --prompt "a {color} object" --no-class-mean 2>/dev/null | tail -5
echo "== text grounding: prompts for the distractor, scored on its mask"
"$cli" evaluate-heatmaps --model "$clip" --dataset test --prompt "a {color} object" --target distractor 2>/dev/null | tail -5
"$cli" evaluate-heatmaps --model "$clip" --dataset test --prompt "a {color} object" --target distractor --no-class-mean 2>/dev/null | tail -5
echo "== gradient methods' settings: LeGrad's layers, Chefer through every layer"
for k in 1 3 4; do
  "$cli" evaluate-heatmaps --model "$clip" --dataset test --count 500 --prompt "a {color} object" --methods legrad \
    --legrad-layers $k 2>/dev/null | tail -1
done
"$cli" evaluate-heatmaps --model "$clip" --dataset test --count 500 --prompt "a {color} object" --methods chefer \
  --chefer-start-layer 0 2>/dev/null | tail -1
echo "== CLIP Surgery settings: last K blocks, then same-attribute reference texts"
for k in 1 2 3 4; do
  "$cli" evaluate-heatmaps --model "$clip" --dataset test --count 500 --prompt "a {color} object" --methods surgery \
    --surgery-blocks $k 2>/dev/null | tail -1
done
sed 's/^/a /; s/$/ object/' "$here/resources/shapes/color.txt" > color-prompts.txt
"$cli" evaluate-heatmaps --model "$clip" --dataset test --count 500 --prompt "a {color} object" --methods surgery,decomposition \
  --reference-texts color-prompts.txt 2>/dev/null | tail -2

echo "== spurious split: ablating the discovered heads (means from spurious-train)"
{ for s in circle square hexagon heart; do printf '0\ta %s\n' "$s"; done
  for s in triangle diamond star cross; do printf '1\ta %s\n' "$s"; done; } > groups.tsv
"$cli" ablate --cache cache-sp-test --reference cache-sp-train --labels sp-test/labels.csv --label-column group \
  --classes groups.tsv --group-columns group,background --discover-spurious \
  --spurious "an object on a grass background,an object on a water background" \
  --core "a circle,a square,a hexagon,a heart,a triangle,a diamond,a star,a cross" --top 3 --out ablate.json 2>/dev/null

echo "== the same on shapes-clip-spurious (trained on spurious-train only), top 1 / 3 / 6 / 8 / 10 heads"
"$cli" cache build --model "$spur" --images sp-train/images --out cache-spur-train 2>/dev/null
"$cli" cache build --model "$spur" --images sp-test/images --out cache-spur-test 2>/dev/null
for k in 1 3 6 8 10; do
  "$cli" ablate --cache cache-spur-test --reference cache-spur-train --labels sp-test/labels.csv --label-column group \
    --classes groups.tsv --group-columns group,background --discover-spurious \
    --spurious "an object on a grass background,an object on a water background" \
    --core "a circle,a square,a hexagon,a heart,a triangle,a diamond,a star,a cross" --top $k --out ablate-spur-$k.json 2>/dev/null | head -4
done
echo "-- every component ranked (where the MLPs and the embedding fall)"
"$cli" ablate --cache cache-spur-test --reference cache-spur-train --labels sp-test/labels.csv --label-column group \
  --classes groups.tsv --group-columns group,background --discover-spurious \
  --spurious "an object on a grass background,an object on a water background" \
  --core "a circle,a square,a hexagon,a heart,a triangle,a diamond,a star,a cross" --top 21 --out ablate-spur-all.json >/dev/null 2>&1
python3 -c 'import json; print([(d["component"], round(d["score_difference"], 3)) for d in json.load(open("ablate-spur-all.json"))["discovered"]])'
"$cli" rank --cache cache-spur-train --property background --out rank-spur-background.csv 2>/dev/null | head -5

echo "== shapes-vit through its aligner"
"$cli" textspan --cache cache-vit --aligner "$vit/aligner.safetensors" --model "$clip" \
  --texts "$here/resources/shapes/text_pool.txt" --per-head 3 --layers last:2 --out textspan-vit.json 2>/dev/null | tail -9
for p in color shape; do
  echo "-- $p"
  "$cli" rank --cache cache-vit --aligner "$vit/aligner.safetensors" --model "$clip" --property "$p" --out "rank-vit-$p.csv" 2>/dev/null | head -4
done

echo "== shapes-swin (Swin) through its aligner"
"$cli" textspan --cache cache-swin --aligner "$swin/aligner.safetensors" --model "$clip" \
  --texts "$here/resources/shapes/text_pool.txt" --per-head 3 --layers last:2 --out textspan-swin.json 2>/dev/null | tail -17
for p in color shape; do
  echo "-- $p"
  "$cli" rank --cache cache-swin --aligner "$swin/aligner.safetensors" --model "$clip" --property "$p" --out "rank-swin-$p.csv" 2>/dev/null | head -4
done
echo "-- retrieval through stage 2's heads"
"$cli" retrieve --cache cache-swin --aligner "$swin/aligner.safetensors" --model "$clip" --text "a red object" --heads 4.0,4.1,4.2,4.3 \
  --top 5 --out retrieve-swin.json 2>/dev/null | tail -3
echo "-- heatmaps (the methods Swin defines), 200 scenes"
"$cli" evaluate-heatmaps --model "$swin" --aligner "$swin/aligner.safetensors" --dataset test --count 200 \
  --prompt "a {color} object" --out eval-swin.csv 2>/dev/null | tail -3
