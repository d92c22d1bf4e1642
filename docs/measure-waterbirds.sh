#!/usr/bin/env bash
# The Waterbirds benchmark (vitscope-cli evaluate waterbirds) on the bundled spurious model, with
# the shapes world in Waterbirds' own layout (group-DRO's metadata.csv): `shapes waterbirds`
# writes spurious-train as split 0 and spurious-test as splits 1 and 2 (2,000 scenes each, seeds
# 9200 / 9201 / 9202); y is the shape group, place 1 on water. Classes: the eight shape prompts
# voting for their group; spurious / core words: the background phrases and the eight shape
# names (the world writes them beside metadata.csv). Both protocols, top 10 components, on
# shapes-clip-spurious; vit-decompose also on the non-CLIP shapes-vit and shapes-swin.
# Usage: docs/measure-waterbirds.sh [WORK] (default /tmp/vitscope-waterbirds).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli="$here/build/bin/vitscope-cli"
work=${1:-/tmp/vitscope-waterbirds}
rm -rf "$work" && mkdir -p "$work"
cd "$work"
"$cli" shapes waterbirds --out world --count 2000 >/dev/null
model="$here/models/shapes-clip-spurious"
for protocol in textspan vit-decompose; do
  "$cli" evaluate waterbirds --model "$model" --data world --classes world/classes.tsv --spurious world/spurious.txt \
    --core world/core.txt --protocol "$protocol" --top 10 --out "$protocol" >/dev/null 2>&1
  echo "== shapes-clip-spurious, protocol $protocol (record: $work/$protocol/record.json)"
  tail -n +3 "$protocol/results.md"
  echo "ablated: $(/usr/bin/python3 -c "import json,sys; print(', '.join(json.load(open(sys.argv[1]))['ablated']))" "$protocol/results.json")"
done
# vit-decompose's own case: non-CLIP models, ranked through their aligners, classified by a linear
# head trained on split 0 (2,000 spurious-train scenes).
for m in shapes-vit shapes-swin; do
  "$cli" evaluate waterbirds --model "$here/models/$m" --aligner "$here/models/$m/aligner.safetensors" --data world \
    --spurious world/spurious.txt --core world/core.txt --protocol vit-decompose --top 10 --out "$m" >/dev/null 2>&1
  echo "== $m (aligner; linear head), protocol vit-decompose (record: $work/$m/record.json)"
  tail -n +3 "$m/results.md"
  /usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('ablated:', ', '.join(json.load(open(sys.argv[2]))['ablated'])); print(r['classifier'])" "$m/record.json" "$m/results.json"
done
