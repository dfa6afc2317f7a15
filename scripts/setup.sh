#!/usr/bin/env bash
# Idempotent set-up on Debian 12 (bookworm), 13 (trixie) and unstable: system packages, .venv,
# Python packages, plugin link and a throwaway QGIS profile with the plugin enabled. A second
# run only checks and returns quickly. `setup.sh --apt` installs the Debian packages only
# (scripts/matrix.sh caches them in its chroots that way).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(qgis python3-qgis qgis-providers gdal-bin python3-gdal python3-scipy python3-venv
              python3-matplotlib)
APT_PACKAGES+=(proj-data)  # geoid grids (EGM96) for demsr:surveyrmse's vertical references
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ "${1:-}" = "--apt" ] && exit 0

# The venv is made from Debian's python3 (the one QGIS and GDAL were built for) and sees its
# packages: numpy, scipy and GDAL are the system's, 1.x on Debian 12 and 2.x on 13 and later.
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
# pip may add packages but never replace the system's numpy: it is pinned to its own version.
SYSTEM_NUMPY="$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')"
echo "numpy==$SYSTEM_NUMPY" > .venv/demsr-system-constraints.txt
# Test tools per QGIS version (pytest-qgis after 2.1.0 needs QGIS >= 3.34).
QGIS_VERSION="$(dpkg-query -W -f='${Version}' python3-qgis)"
if dpkg --compare-versions "${QGIS_VERSION#*:}" ge 3.34; then  # (without the epoch)
  QGIS_CONSTRAINTS=constraints-qgis-3.34.txt
else
  QGIS_CONSTRAINTS=constraints-qgis-3.22.txt
fi
ORT="onnxruntime"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && ORT="onnxruntime-gpu"
WHEELS="${DEMSR_WHEELS:-/opt/wheels}"  # where a local CPU build of torch may lie
stamp=".venv/.demsr-requirements"
want="$(cat requirements.txt requirements-dev.txt requirements-torch.txt "$QGIS_CONSTRAINTS" \
        .venv/demsr-system-constraints.txt | sha256sum | cut -c1-16) $ORT $(ls "$WHEELS" 2>/dev/null \
        | grep -c '^torch-' || true)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv ($ORT; numpy $SYSTEM_NUMPY of the system)"
  PIP_ARGS=(-q -c .venv/demsr-system-constraints.txt -c "$QGIS_CONSTRAINTS")
  REQS=(-r requirements.txt)
  if [ "$ORT" = "onnxruntime-gpu" ]; then
    .venv/bin/pip uninstall -y -q onnxruntime >/dev/null 2>&1 || true
    REQS=(onnxruntime-gpu)
  fi
  .venv/bin/pip install "${PIP_ARGS[@]}" "${REQS[@]}" -r requirements-dev.txt
  # torch only from a local CPU build for this Python, never PyPI's multi-GB CUDA one: the
  # wheel itself must come from $WHEELS (--no-index); its small dependencies from the index.
  if .venv/bin/pip install -q --no-index --no-deps --find-links "$WHEELS" \
       -r requirements-torch.txt >/dev/null 2>&1; then
    .venv/bin/pip install "${PIP_ARGS[@]}" --find-links "$WHEELS" -r requirements-torch.txt
    echo "setup: torch installed from $WHEELS"
  else
    echo "setup: no CPU build of $(grep -v '^#' requirements-torch.txt) for Python" \
         "$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])') in $WHEELS:" \
         "the tests that need torch skip"
  fi
  echo "$want" > "$stamp"
fi

# QGIS finds the plugin under the folder name `demsr`.
mkdir -p build/plugins
[ -L build/plugins/demsr ] || ln -s "$ROOT" build/plugins/demsr
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
if ! grep -qs "demsr=true" "$QGIS_CUSTOM_CONFIG_PATH"/profiles/default/QGIS/QGIS3.ini; then
  qgis_process.bin plugins enable demsr >/dev/null 2>&1 || true
fi
