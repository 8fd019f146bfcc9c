#!/usr/bin/env bash
# The GPU check: run from the repository root on a machine with an NVIDIA GPU, CuPy, PyTorch (CUDA)
# and pytest. The package is pure Python, so PYTHONPATH=. is the whole install. Writes a log per
# step into $OUT (default gpu-check-output/) and prints a summary; exits non-zero if a step failed.
#
#   bash tools/gpu_check.sh                  # everything: up to the steps' limits added, 16.5 minutes
#   STEPS="tests equivalence" bash tools/gpu_check.sh
#
# Where one command may run 10 minutes at most (the device tool), run it as two, each leaving what it did in $OUT:
#   STEPS="info equivalence tests train" bash tools/gpu_check.sh        # limits: 8 minutes
#   STEPS="bench models models-tf32 models-formulas" bash tools/gpu_check.sh   # limits: 7.5 minutes
#
# Steps: info (backends, device, versions), tests (the suite's tests that take the backend, on CuPy),
# equivalence (NumPy and CuPy give the same outputs and gradients for the same weights), train (the
# reverse task to its accuracy target), bench (per-operation overhead), models (training steps of
# the SEED and the large configuration beside the same model in PyTorch CUDA eager, float32),
# models-tf32 (the same with TF32 products in both libraries, CUPY_TF32=1), models-formulas (float32
# again, without the CUDA kernels of minitransformer/kernels.py, which are on by default: softmax,
# attention's weights, layer norm, GELU, BCE, the column sums, Adam, the random numbers, the scatter-add and the products (cuBLAS
# called directly) as array formulas,
# MINITRANSFORMER_KERNELS=0). Not run unless named in STEPS: kernels (only the kernels' tests on the GPU,
# tests/test_kernels.py: each kernel and product against the formulas and CuPy's own, in a minute where
# the whole suite takes four), train-formulas (the train step without
# the kernels), profile (tools/profile_step.py on the SEED model: the host's time per step against
# the device's, by phase, beside PyTorch's, and where the host spends it; after the calls the step makes
# into the array library, tools/count_calls.py, so that the host's time per call can be read off, and what
# single calls of each kind cost the host beside PyTorch's, --calls).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check-output}
mkdir -p "$OUT"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# array-api-compat, array-api-strict or hypothesis (the tests' property checks) may be missing there: carried wheels
# in .whl/ fill the gap (put after the installed packages on the path: those come first where they are)
if ! python3 -c "import array_api_compat, array_api_strict, hypothesis" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/mt-site .whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/mt-site"
fi
# equivalence before tests: it compiles most kernels once (NVRTC, into CuPy's cache on disk), which the tests' 12
# processes would otherwise each compile at the same time
STEPS=${STEPS:-"info equivalence tests train bench models models-tf32 models-formulas"}
summary=""
failed=0

step() {  # step NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  case " $STEPS " in *" $name "*) ;; *) return ;; esac
  echo "=== $name: $*"
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 40 "$OUT/$name.log"
  summary="$summary$(printf '%-12s rc=%-3s %4ss' "$name" "$rc" "$((SECONDS - start))")\n"
  [ "$rc" -eq 0 ] || failed=1
}

step info 60 bash -c 'python3 -m minitransformer info
for m in pytest xdist hypothesis tqdm matplotlib torch; do  # what the tests, train and bench steps import
  python3 -c "import $m" 2>/dev/null && echo "import $m: ok" || echo "import $m: MISSING"
done' # every test that takes the backend, on CuPy; those marked single_backend (and the docstrings' examples) run on NumPy
# alone whatever --backends says, as in CI, so they are left to CI. 12 processes share the tests, each with its own
# CUDA context and one BLAS thread (16 threads each oversubscribe the CPUs): pytest-xdist's workers where it is
# installed, else the test files dealt round-robin to 12 pytest runs (pytest_in_groups, each run's log in
# $OUT/tests-groups/ as it is written, so a step its time limit ends leaves what ran). --durations names the
# slowest, should the step outgrow its limit. No -q: setup.cfg's addopts has one, and -qq would hide the count of
# tests passed. TESTS (a folder or a file; default: tests) and BACKEND (default: cupy) choose others
TESTS=${TESTS:-tests} BACKEND=${BACKEND:-cupy}
pytest_in_groups() {  # pytest_in_groups N PATH PYTEST_ARGUMENTS...: PATH's test files in N runs; fails if one fails
  local n=$1 path=$2 logs files i pid pids=() code rc=0
  shift 2
  logs=${OUT:-.}/tests-groups
  rm -rf "$logs" && mkdir -p "$logs"
  files=$(find "$path" -name 'test_*.py' | sort)
  [ -n "$files" ] || { echo "pytest_in_groups: no test_*.py under $path"; return 1; }
  [ "$n" -le "$(wc -l <<<"$files")" ] || n=$(wc -l <<<"$files")  # a run given no file would run the whole suite
  for ((i = 0; i < n; i++)); do
    python3 -m pytest "$@" $(awk -v n="$n" -v i="$i" '(NR - 1) % n == i' <<<"$files") >"$logs/$i.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid"
    code=$?
    [ "$code" -eq 0 ] || [ "$code" -eq 5 ] || rc=1  # pytest's 5: no test collected (all deselected, or no file)
  done
  cat "$logs"/*.log
  echo "=== the $n runs' last lines"
  for ((i = 0; i < n; i++)); do tail -n 1 "$logs/$i.log"; done
  return $rc
}
export -f pytest_in_groups
if python3 -c "import xdist" 2>/dev/null; then PARALLEL=(python3 -m pytest -n 12); else PARALLEL=(pytest_in_groups 12); fi
export OUT
step tests 240 env OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 bash -c '"$@"' _ "${PARALLEL[@]}" "$TESTS" \
  --backends "$BACKEND" -m "not single_backend" -p no:cacheprovider -rfE --durations=15 --maxfail=30
step kernels 90 python3 -m pytest tests/test_kernels.py --backends cupy -p no:cacheprovider -k gpu
step equivalence 90 python3 tools/backend_equivalence.py --backend cupy
step train 150 python3 -m minitransformer train --task reverse --backend cupy --no-progress --target 0.99 --out /tmp/mt-reverse
step train-formulas 150 env MINITRANSFORMER_KERNELS=0 python3 -m minitransformer train --task reverse --backend cupy \
  --no-progress --target 0.99 --out /tmp/mt-reverse-formulas
step bench 90 env MINITRANSFORMER_BACKEND=cupy python3 -m minitransformer bench autograd --repeat 5 --json "$OUT/bench.json"
# bench seed and bench large on the GPU, beside PyTorch CUDA; $0 is the folder for the JSON, $1 a suffix
MODELS='export MINITRANSFORMER_BACKEND=cupy
python3 -m minitransformer bench seed --repeat 5 --json "$0/bench-seed$1.json" &&
python3 -m minitransformer bench large --repeat 3 --json "$0/bench-large$1.json"'
step models 120 bash -c "$MODELS" "$OUT" ""
step models-tf32 120 env CUPY_TF32=1 bash -c "$MODELS" "$OUT" "-tf32"
step models-formulas 120 env MINITRANSFORMER_KERNELS=0 bash -c "$MODELS" "$OUT" "-formulas"
step profile 120 bash -c 'python3 tools/count_calls.py seed &&
MINITRANSFORMER_BACKEND=cupy python3 tools/profile_step.py seed --torch --calls --top 25'

printf '\n=== summary\n%b' "$summary"
exit $failed
