#!/usr/bin/env bash
# Idempotent set-up on Debian bookworm: system packages, .venv, Python packages, plugin link and
# a throwaway QGIS profile with the plugin enabled. A second run only checks and returns quickly.
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

# The venv is made from Debian's python3 (the one QGIS and GDAL were built for) and sees its
# packages; numpy stays Debian's 1.x through constraints.txt.
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
ORT="onnxruntime"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && ORT="onnxruntime-gpu"
stamp=".venv/.demsr-requirements"
want="$(cat requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -c1-16) $ORT"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv ($ORT)"
  PIP_ARGS=(-q -c constraints.txt)
  [ -d /opt/wheels ] && PIP_ARGS+=(--find-links /opt/wheels)  # local CPU build of torch
  REQS=(-r requirements.txt)
  if [ "$ORT" = "onnxruntime-gpu" ]; then
    .venv/bin/pip uninstall -y -q onnxruntime >/dev/null 2>&1 || true
    REQS=(onnxruntime-gpu)
  fi
  .venv/bin/pip install "${PIP_ARGS[@]}" "${REQS[@]}" -r requirements-dev.txt
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
