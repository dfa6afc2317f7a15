# Environment for running the plugin headless; sourced by the other scripts, and by hand:
#   source scripts/env.sh && qgis_process.bin list
# (Debian's /usr/bin/qgis_process wrapper is broken on 3.22; qgis_process.bin works.)
DEMSR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEMSR_ROOT
export QT_QPA_PLATFORM=offscreen
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
# The plugin is seen by QGIS as the folder build/plugins/demsr (a link to the repository) ...
export QGIS_PLUGINPATH="$DEMSR_ROOT/build/plugins"
# ... in a throwaway profile, so nothing of the user's own QGIS set-up is touched.
export QGIS_CUSTOM_CONFIG_PATH="$DEMSR_ROOT/build/qgis-config"
# QGIS embeds Debian's python3: let it see the venv's packages (onnxruntime) too.
DEMSR_SITE="$(ls -d "$DEMSR_ROOT"/.venv/lib/python3*/site-packages 2>/dev/null | head -1)"
export PYTHONPATH="$DEMSR_SITE${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$DEMSR_ROOT/.venv/bin:$PATH"
