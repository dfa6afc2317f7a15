#!/usr/bin/env bash
# Screenshots of the plugin in QGIS desktop, on a virtual screen (Xvfb): the landforms dialog
# and the styled results of TPI, landforms and survey accuracy, written to docs/images/ so that
# what users see stays current and reviewable. Needs xvfb (xvfb-run) and imagemagick (convert).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
source "$ROOT/scripts/env.sh"
unset QT_QPA_PLATFORM  # a real (virtual) screen, not the offscreen platform of the tests
for tool in xvfb-run convert; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install xvfb imagemagick"; exit 1; }
done
export DEMSR_SHOTS="$ROOT/docs/images"
DEMSR_SHOTS_WORK="$(mktemp -d)"
export DEMSR_SHOTS_WORK
trap 'rm -rf "$DEMSR_SHOTS_WORK"' EXIT
# A profile of its own, the plugin enabled, no first-run questions; the user's is not touched.
export QGIS_CUSTOM_CONFIG_PATH="$ROOT/build/qgis-desktop-config"
INI="$QGIS_CUSTOM_CONFIG_PATH/profiles/default/QGIS/QGIS3.ini"
mkdir -p "$(dirname "$INI")" "$DEMSR_SHOTS"
cat > "$INI" <<'INI'
[PythonPlugins]
demsr=true

[qgis]
checkVersion=false
showTips=false
allowCrashReporting=false
INI
shots=(dialog_landforms result_landforms result_tpi result_residuals)
for name in "${shots[@]}"; do rm -f "$DEMSR_SHOTS/$name.png"; done
timeout 600 xvfb-run -a -s "-screen 0 1280x800x24" \
  qgis --nologo --noversioncheck --code "$ROOT/scripts/screenshots.py" \
  > "$DEMSR_SHOTS_WORK/qgis.log" 2>&1 || true
missing=0
for name in "${shots[@]}"; do
  png="$DEMSR_SHOTS/$name.png"
  if [ -s "$png" ]; then
    # 256 colours keep each picture small for the repository (well under 300 KB)
    convert "$png" -colors 256 "PNG8:$png"
    echo "$png: $(du -k "$png" | cut -f1) KB"
  else
    echo "missing: $png"; missing=1
  fi
done
if [ "$missing" = 1 ]; then grep -v "^Warning\|^$" "$DEMSR_SHOTS_WORK/qgis.log" | tail -40; exit 1; fi
