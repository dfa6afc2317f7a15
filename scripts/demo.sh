#!/usr/bin/env bash
# Set up (idempotent) and run the main job: super-resolution of the bundled SRTM 90 m DEM
# through qgis_process, then a side-by-side preview. Results land in demo_output/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
OUT="$ROOT/demo_output"
mkdir -p "$OUT"
INPUT="$ROOT/data/mandakini_srtm90_utm44.tif"
RESULT="$OUT/mandakini_x2.tif"
echo "== qgis_process: demsr:superresolution x2 on $(basename "$INPUT")"
qgis_process.bin --json run demsr:superresolution -- \
  INPUT="$INPUT" SCALE=2 OUTPUT="$RESULT" > "$OUT/superresolution.json"
.venv/bin/python -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; \
print('output:', r['OUTPUT']); print('device used:', r['DEVICE_USED'])" "$OUT/superresolution.json"
.venv/bin/python scripts/preview.py "$INPUT" "$RESULT" "$OUT/mandakini_x2_preview.png"
echo "== done: layer $RESULT, preview $OUT/mandakini_x2_preview.png"
