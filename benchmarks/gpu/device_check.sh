#!/bin/bash
# The GPU part of the super-resolution work, as one call of the device tool (about 8 minutes):
#
#   .venv/bin/python -m training.pack --out build/gpu/corpus.npz      # here, once (19 MB)
#   run(command="bash benchmarks/gpu/device_check.sh", carry=["build/gpu"], timeout_s=600)
#
# The device machine has PyTorch, onnx and onnxruntime but no GDAL, so training reads the
# packed corpus. Two runs share the GPU for TRAIN_MINUTES (default 5): a wider fastsr (64
# channels x 16 blocks) from scratch and the bundled vdsr30 fine-tuned, both on the SRTM
# training files with the bundled models' recipe (MSE + 0.5 x MSE of finite differences,
# --coarsen 1 2 3), last checkpoint kept. Then benchmarks/bench_gpu.py times the bundled
# models. Back in $OUT (8 files at most): the logs, sr_gpu.json/.md and the two checkpoints
# without their optimizer state (export and score them here: python -m training.export,
# python -m training.evaluate --manifest training/corpus.csv, python -m training.compare).
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:?the device tool sets OUT}
MINUTES=${TRAIN_MINUTES:-5}
RUNS=/tmp/demsr-runs
COMMON=(--packed build/gpu/corpus.npz --manifest training/corpus.csv --products SRTM
        --scales 2 3 4 --coarsen 1 2 3 --loss mse --minutes "$MINUTES" --threads 4)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/nvidia-smi.csv" 2>&1
python3 -c "import numpy, torch; print('torch', torch.__version__, 'numpy', numpy.__version__,
torch.cuda.get_device_name(0))" || exit 1
test -f build/gpu/corpus.npz || { echo "carry build/gpu (python -m training.pack)"; exit 1; }

python3 -m training.train --model fastsr --channels 64 --blocks 16 "${COMMON[@]}" \
    --patch 96 --batch 32 --lr 5e-4 --epoch-steps 2000 --out "$RUNS/fastsr64x16" \
    > "$OUT/fastsr64x16.log" 2>&1 &
python3 -m training.train --model vdsr30 --init models/vdsr30.onnx "${COMMON[@]}" \
    --patch 48 --batch 32 --lr 1e-4 --clip 1 --epoch-steps 500 --out "$RUNS/vdsr30_gpu" \
    > "$OUT/vdsr30_gpu.log" 2>&1 &
wait

python3 benchmarks/bench_gpu.py --out "$OUT" || echo "bench_gpu failed"

python3 - "$RUNS" "$OUT" <<'PY'
import sys, torch
runs, out = sys.argv[1:]
for name in ("fastsr64x16", "vdsr30_gpu"):
    try:
        ckpt = torch.load(f"{runs}/{name}/last.pt", map_location="cpu", weights_only=False)
    except FileNotFoundError:
        print(name, "left no checkpoint")
        continue
    ckpt.pop("optimizer", None)  # 16 MiB a file comes back; --init and export need no optimizer
    torch.save(ckpt, f"{out}/{name}.pt")
    print(name, "step", ckpt["step"], "minutes", round(ckpt["elapsed_s"] / 60, 1))
PY
tail -n 3 "$OUT"/*.log
