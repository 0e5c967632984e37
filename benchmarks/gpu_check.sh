#!/usr/bin/env bash
# minjiang GPU check: one prepared run on a GPU node, under 6 minutes. See docs/gpu.md.
#
#   benchmarks/gpu_check.sh           run the check (on the GPU node)
#   benchmarks/gpu_check.sh wheels    on a machine with internet: download into .whl/
#                                     the pure dependencies a bare CUDA image may lack
#
# The check installs nothing heavy: CuPy, numba(-cuda), NumPy, SciPy, pytest come from the
# node's Python. It installs wheels found in .whl/ (if any) into /tmp/site, then minjiang
# itself (pip install -e . --no-deps), and runs, each stage under its own timeout and all
# under one deadline:
#   1. nvidia-smi
#   2. pytest -m gpu tests/kernels tests/plugins   (every kernel test body on the gpu
#      backend, and the plugins' operators on the GPU against the CPU)
#   3. pytest tests/kernels/test_cudasim.py tests/plugins/*/test_*cudasim.py
#      (numba.cuda kernels under the simulator, PTX)
#   4. python -m benchmarks._gpu --part kernels      (CuPy vs numba CPU vs NumPy, bandwidth)
#   5. python -m benchmarks._gpu --part end-to-end   (Zarr -> GPU -> Zarr through the runtime,
#      pinned and zarr reads onto the device)
# Everything lands in $OUT (default ./gpu-results): gpu-check.log, stages.txt,
# nvidia-smi.txt, pytest-gpu.xml, pytest-cudasim.xml, gpu-kernels.json, gpu-end-to-end.json.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"

# Dependencies a CUDA image without minjiang's stack may lack (pure Python or manylinux
# wheels for CPython 3.12); `wheels` pins them to this machine's installed versions.
WHEEL_DEPS=(zarr numcodecs crc32c google-crc32c donfig pydantic pydantic_core annotated-types
            typing-inspection dask partd locket importlib_metadata cftime nibabel pydicom
            h5netcdf)

if [[ "${1:-}" == "wheels" ]]; then
    mkdir -p .whl
    pins=$("$PY" - "${WHEEL_DEPS[@]}" <<'EOF'
import sys
from importlib import metadata
for name in sys.argv[1:]:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        print(name)
EOF
)
    # shellcheck disable=SC2086
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux1_x86_64 -d .whl $pins
    exit $?
fi

OUT="${OUT:-$ROOT/gpu-results}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export OUT PYTHONUNBUFFERED=1
exec > >(tee -a "$OUT/gpu-check.log") 2>&1

START=$(date +%s)
DEADLINE=$((START + ${GPU_CHECK_SECONDS:-345}))
: > "$OUT/stages.txt"

# stage NAME LIMIT_S CMD...: run CMD under `timeout`, never past the deadline.
stage() {
    local name=$1 limit=$2 left t0 rc
    shift 2
    left=$((DEADLINE - $(date +%s) - 5))
    if ((left < 10)); then
        echo "=== $name: skipped, the deadline is reached"
        echo "$name skipped deadline" >> "$OUT/stages.txt"
        return 0
    fi
    ((limit > left)) && limit=$left
    echo "=== $name (limit ${limit}s)"
    t0=$(date +%s)
    timeout --kill-after=5 "$limit" "$@"
    rc=$?
    echo "=== $name: exit $rc after $(($(date +%s) - t0))s"
    echo "$name exit=$rc seconds=$(($(date +%s) - t0)) limit=$limit" >> "$OUT/stages.txt"
    return 0
}

install() {
    if compgen -G ".whl/*.whl" > /dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
    fi
    # no build isolation: nothing is downloaded; setuptools comes from the image
    "$PY" -m pip install -q --no-deps --no-build-isolation -e . \
        || "$PY" -m pip install -q --no-deps --no-build-isolation .
}

echo "minjiang GPU check, $(date -u +%FT%TZ), repository $ROOT, output $OUT"
git -C "$ROOT" rev-parse HEAD 2>/dev/null | sed 's/^/commit /'
t0=$(date +%s)
install
echo "install exit=$? seconds=$(($(date +%s) - t0))" >> "$OUT/stages.txt"
"$PY" - <<'EOF'
import importlib
for name in ("numpy", "numba", "cupy", "scipy", "minjiang", "zarr", "pydantic", "dask"):
    try:
        module = importlib.import_module(name)
        print(f"{name:10s} {getattr(module, '__version__', '?')}")
    except Exception as err:
        print(f"{name:10s} MISSING ({type(err).__name__}: {err})")
EOF

stage nvidia-smi 20 bash -c 'set -o pipefail; nvidia-smi | tee "$OUT/nvidia-smi.txt"; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,clocks.mem --format=csv | tee -a "$OUT/nvidia-smi.txt"'

# The runtime-level test needs minjiang's own dependencies (zarr, pydantic, dask).
IGNORE=()
if ! "$PY" -c "import zarr, pydantic, dask" 2> /dev/null; then
    echo "zarr/pydantic/dask missing: skipping tests/kernels/test_gpu_backend.py and the end-to-end run"
    echo "(run 'benchmarks/gpu_check.sh wheels' where there is internet, and carry .whl/)"
    IGNORE=(--ignore=tests/kernels/test_gpu_backend.py)
    NO_RUNTIME=1
fi
WORKERS=()
if "$PY" -c "import xdist" 2> /dev/null; then
    WORKERS=(-n 8)  # kernels compile (NVRTC, NVVM) in parallel
fi

GPU_TESTS=(tests/kernels)
if [[ -z "${NO_RUNTIME:-}" ]]; then
    GPU_TESTS+=(tests/plugins)  # the plugins' operators run through the runtime
fi
stage pytest-gpu 120 "$PY" -m pytest -m gpu "${GPU_TESTS[@]}" -q -p no:cacheprovider "${WORKERS[@]}" \
    "${IGNORE[@]}" -o junit_family=xunit2 --junitxml="$OUT/pytest-gpu.xml"
# shellcheck disable=SC2046
stage pytest-cudasim 40 "$PY" -m pytest tests/kernels/test_cudasim.py \
    $(compgen -G "tests/plugins/*/test_*cudasim.py") -q -p no:cacheprovider \
    --junitxml="$OUT/pytest-cudasim.xml"
stage bench-kernels 95 "$PY" -m benchmarks._gpu --part kernels --out "$OUT"
if [[ -z "${NO_RUNTIME:-}" ]]; then
    stage bench-end-to-end 75 "$PY" -m benchmarks._gpu --part end-to-end --out "$OUT"
else
    echo "bench-end-to-end skipped missing-dependencies" >> "$OUT/stages.txt"
fi

echo "=== done after $(($(date +%s) - START))s"
cat "$OUT/stages.txt"
ls -l "$OUT"
