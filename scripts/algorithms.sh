#!/usr/bin/env bash
# Set up (idempotent), then run each of the five algorithms through qgis_process: first with only
# their mandatory parameters, then with every optional output asked for. Python warnings are on
# (PYTHONWARNINGS=default) and any that points into the plugin's own files fails the run.
# Prints the stack (QGIS, GDAL, Python, numpy) and a checksum of the landforms classes (of the
# pixel values: the file's bytes also hold each GDAL's own tags), which scripts/matrix.sh
# compares between QGIS versions. Results land in build/algorithms/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
cd "$ROOT"
OUT="$ROOT/build/algorithms"
rm -rf "$OUT"
mkdir -p "$OUT"
DEM="$ROOT/data/jacksboro_fault_srtm3.tif"
DEM2="$ROOT/data/mandakini_srtm90_utm44.tif"
export PYTHONWARNINGS=default

.venv/bin/python - <<'EOF'
import sys

import numpy
from osgeo import gdal
from qgis.core import Qgis

gdal.UseExceptions()
print(f"algorithms: QGIS {Qgis.QGIS_VERSION.split('-')[0]}, GDAL {gdal.__version__}, "
      f"Python {sys.version.split()[0]}, numpy {numpy.__version__}")
EOF

# Survey points for surveyrmse: every 23rd cell centre of the DEM, with a known error of
# +-0.5 m, as 3D points (geometry Z) with the same elevation also in the field z_survey.
.venv/bin/python - "$DEM" "$OUT/survey.gpkg" <<'EOF'
import sys

from osgeo import gdal, ogr, osr

gdal.UseExceptions()
ogr.UseExceptions()
dem, path = sys.argv[1:]
ds = gdal.Open(dem)
z = ds.GetRasterBand(1).ReadAsArray()
x0, dx, _, y0, _, dy = ds.GetGeoTransform()
srs = osr.SpatialReference(wkt=ds.GetProjection())
out = ogr.GetDriverByName("GPKG").CreateDataSource(path)
layer = out.CreateLayer("survey", srs, ogr.wkbPoint25D)
layer.CreateField(ogr.FieldDefn("z_survey", ogr.OFTReal))
for i, (r, c) in enumerate((r, c) for r in range(5, z.shape[0], 23)
                           for c in range(5, z.shape[1], 23)):
    value = float(z[r, c]) + (0.5 if i % 2 else -0.5)
    feature = ogr.Feature(layer.GetLayerDefn())
    feature.SetField("z_survey", value)
    point = ogr.Geometry(ogr.wkbPoint25D)
    point.AddPoint(x0 + (c + 0.5) * dx, y0 + (r + 0.5) * dy, value)
    feature.SetGeometry(point)
    layer.CreateFeature(feature)
out = None
EOF

failed=0
run() {  # run NAME ALGORITHM PARAMETERS...
  local name="$1" alg="$2"; shift 2
  if ! qgis_process.bin --json run "demsr:$alg" -- "$@" > "$OUT/$name.json" \
       2> "$OUT/$name.stderr"; then
    echo "algorithms: $name FAILED"; cat "$OUT/$name.stderr"; failed=1; return
  fi
  # A warning that points into the plugin: "<plugin file>.py:<line>: <Category>Warning: ...".
  if grep -E "(/plugins/demsr|$ROOT)/[^ :]*\.py:[0-9]+: [A-Za-z]*Warning" "$OUT/$name.stderr"; then
    echo "algorithms: $name warns in the plugin's code (above)"; failed=1; return
  fi
  echo "algorithms: $name ok"
}

# Only the mandatory parameters.
run superresolution superresolution INPUT="$DEM" OUTPUT="$OUT/sr.tif"
run attraction attraction INPUT="$DEM" OUTPUT="$OUT/attraction.tif"
run tpi tpi INPUT="$DEM" OUTPUT="$OUT/tpi.tif"
run landforms landforms INPUT="$DEM" OUTPUT="$OUT/landforms.tif"
run landforms2 landforms INPUT="$DEM2" OUTPUT="$OUT/landforms2.tif"
run surveyrmse surveyrmse DEMS="$DEM" POINTS="$OUT/survey.gpkg"
# Every optional output, and the optional field parameter.
run superresolution_all superresolution INPUT="$DEM" OUTPUT="$OUT/sr_all.tif" ENSEMBLE=true \
  OUTPUT_SPREAD="$OUT/sr_spread.tif"
run landforms_all landforms INPUT="$DEM" OUTPUT="$OUT/landforms_all.tif" \
  OUTPUT_TABLE="$OUT/landforms_table.gpkg" SCHEME=1
run surveyrmse_all surveyrmse DEMS="$DEM" POINTS="$OUT/survey.gpkg" ELEVATION_FIELD=z_survey \
  OUTPUT_RESIDUALS="$OUT/residuals.gpkg" OUTPUT_TABLE="$OUT/accuracy.gpkg" \
  OUTPUT_HTML="$OUT/accuracy.html"
[ "$failed" -eq 0 ] || { echo "algorithms: FAILED"; exit 1; }

.venv/bin/python - "$OUT" <<'EOF'
import hashlib
import sys

from osgeo import gdal

gdal.UseExceptions()
out = sys.argv[1]
digest = hashlib.sha256()
for name in ("landforms.tif", "landforms2.tif", "landforms_all.tif"):
    ds = gdal.Open(f"{out}/{name}")  # kept open while its band is used
    band = ds.GetRasterBand(1)
    digest.update(band.ReadAsArray().tobytes())
    # The legend is in the file on every GDAL: palette and class names (GDAL 3.6 reads the
    # .aux.xml, which holds the names, only once metadata is asked for).
    band.GetMetadata()
    assert band.GetColorTable() is not None, f"{name}: no colour table"
    assert band.GetCategoryNames(), f"{name}: no class names"
print(f"algorithms: landforms classes sha256 {digest.hexdigest()}")
EOF
echo "algorithms: all five ran"
