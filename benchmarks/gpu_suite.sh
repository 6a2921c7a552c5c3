#!/usr/bin/env bash
# Every GPU row of benchmarks/step_throughput.py in one run, as JSON lines in
# ${OUT:-benchmarks/gpu}/results.jsonl (the whole output also in run.log beside it).
#
#   bash benchmarks/gpu_suite.sh                    # on a machine whose JAX has a GPU backend
#   GPU_SUITE_TINY=1 bash benchmarks/gpu_suite.sh   # every row end to end on a CPU, tiny settings
#
# Rows, in this order (a row that fails or outlasts its time limit is recorded as a JSON line
# {"row", "failed": true, "rc", "timed_out", "stderr_tail", ...} and the suite goes on; once the
# suite's time budget is spent the remaining rows are recorded as {"row", "skipped": ...}):
#   versions   python, jax, jaxlib, flax, optax, torch, the backend and the device (after
#              nvidia-smi's table and the versions are printed)
#   peak       `step_throughput.py --peak-only`: the datasheet peaks chosen for bfloat16 and
#              float32 and the measured 8192x8192 matmul rates in both
#   W_D        for D in $DTYPES (bfloat16 float32), for W in $WORKLOADS (dcgan64 sngan32
#              biggan32 stylegan2_cifar): ganjax's step at the experiment's batch, $STEPS steps
#              x $REPEATS blocks (stylegan2_cifar: 16 steps, so that each block holds one lazy R1
#              step in its proportion), and for dcgan64, sngan32 and biggan32 the PyTorch peer
#              (torch_peers.py with $PEER_PYTHON) in each of $PEER_MODES (eager, compile), in
#              $ROUNDS alternating rounds: two lines, ganjax's and the comparison. The peer
#              runs in the same dtype (bfloat16: autocast) without channels_last: none of the
#              references it follows (PyTorch's DCGAN example, Mimicry, BigGAN-PyTorch) uses it.
#              dcgan64 runs with --reuse-fakes, the DCGAN example's (and its peer's) algorithm:
#              one generator forward per step.
#   flops_check  sngan32 in float32 with --check-flops: the step's FLOP count against one
#              discriminator and one generator update compiled alone (n_critic 5).
#
# Settings (environment): OUT; PYTHON (default: .venv/bin/python if its JAX sees a GPU, or
# with GPU_SUITE_TINY=1 if it imports JAX, else python3); PEER_PYTHON (default: PYTHON if it
# imports torch, else python3); WORKLOADS; DTYPES; PEER_MODES (empty: no peers); STEPS (20),
# REPEATS (3), ROUNDS (2); SUITE_BUDGET_S (480: the rows start within it), ROW_TIMEOUT_S (240:
# one row's limit), PEER_TIMEOUT_S (150: one peer run's, recorded in the comparison line when
# exceeded); GPU_SUITE_TINY=1 (the experiments' 'tiny' networks, batch 4, one step per block,
# one round, peers at batch 4 with one warm-up step, on the CPU: a test of the suite, not a
# benchmark).
#
# The suite installs nothing. It needs a JAX with a CUDA backend: the project's .venv has JAX's
# CPU build only (its torch is CUDA 13's, with nvidia-* CUDA 13 wheels, but JAX's
# jax-cuda12-plugin and jax-cuda12-pjrt 0.10.2 wheels are 8 MB and 174 MB and expect CUDA 12).
# On a machine with internet access: `.venv/bin/pip install -U "jax[cuda13]==<jax version>"`
# (or "jax[cuda12]" with CUDA 12 libraries). On a GPU machine without network access,
# use their image's python3 instead (JAX with jax-cuda13-plugin, flax, optax and torch) and
# carry what ganjax needs beside those, ml_collections' wheel, then:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   PYTHONPATH=/tmp/site PYTHON=python3 bash benchmarks/gpu_suite.sh
# (ganjax itself is imported from the working tree: the suite puts it on PYTHONPATH).
set -u
cd "$(dirname "$0")/.."
OUT_DIR=${OUT:-benchmarks/gpu}
mkdir -p "$OUT_DIR"
RESULTS=$OUT_DIR/results.jsonl
LOG=$OUT_DIR/run.log
: >"$RESULTS"
exec > >(tee "$LOG") 2>&1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

TINY=${GPU_SUITE_TINY:-0}
if [[ -z ${PYTHON:-} ]]; then
  PYTHON=python3
  if [[ -x .venv/bin/python ]] && .venv/bin/python -c "import jax, sys
sys.exit('$TINY' != '1' and jax.default_backend() != 'gpu')" 2>/dev/null; then
    PYTHON=.venv/bin/python
  fi
fi
if [[ -z ${PEER_PYTHON:-} ]]; then
  PEER_PYTHON=python3
  if "$PYTHON" -c 'import torch' 2>/dev/null; then PEER_PYTHON=$PYTHON; fi
fi
WORKLOADS=${WORKLOADS:-dcgan64 sngan32 biggan32 stylegan2_cifar}
DTYPES=${DTYPES:-bfloat16 float32}
PEER_MODES=${PEER_MODES-eager,compile}
STEPS=${STEPS:-20} REPEATS=${REPEATS:-3} ROUNDS=${ROUNDS:-2}
SIZE=()
PEER_SIZE=()
if [[ $TINY == 1 ]]; then
  # Slow CPU compilations (torch.compile's too) need longer limits than the GPU's.
  STEPS=1 REPEATS=1 ROUNDS=1
  SUITE_BUDGET_S=${SUITE_BUDGET_S:-7200} ROW_TIMEOUT_S=${ROW_TIMEOUT_S:-1500}
  PEER_TIMEOUT_S=${PEER_TIMEOUT_S:-600}
  SIZE=(--tiny --batch 4)
  PEER_SIZE=(--peer-warmup 1)
fi
SUITE_BUDGET_S=${SUITE_BUDGET_S:-480} ROW_TIMEOUT_S=${ROW_TIMEOUT_S:-240}
PEER_TIMEOUT_S=${PEER_TIMEOUT_S:-150}

# One JSON line into the results: the row's name and key=value pairs (values as JSON if they
# parse, else as strings).
record() {
  "$PYTHON" - "$@" >>"$RESULTS" <<'EOF'
import json, sys
line = {"row": sys.argv[1]}
for pair in sys.argv[2:]:
  key, value = pair.split("=", 1)
  try:
    line[key] = json.loads(value)
  except ValueError:
    line[key] = value
print(json.dumps(line))
EOF
}

# run_row NAME COMMAND...: runs the command under the time left (ROW_TIMEOUT_S at most), adds
# its JSON lines to the results with the row's name and wall time, or records its failure.
run_row() {
  local name=$1
  shift
  local left=$((SUITE_BUDGET_S - SECONDS))
  if ((left < 30)); then
    record "$name" skipped="suite budget of ${SUITE_BUDGET_S} s spent" command="$*"
    return
  fi
  local limit=$((left < ROW_TIMEOUT_S ? left : ROW_TIMEOUT_S))
  local start=$SECONDS
  echo "== $name (limit ${limit} s): $*"
  timeout --kill-after=15 "$limit" "$@" >"$TMP/out" 2>"$TMP/err"
  local rc=$?
  local seconds=$((SECONDS - start))
  cat "$TMP/out"
  grep -v -e '^WARNING: All log messages' -e 'oneDNN custom operations' "$TMP/err" | tail -n 20
  grep '^{' "$TMP/out" | sed "s/^{/{\"row\": \"$name\", \"row_s\": $seconds, /" >>"$RESULTS"
  if ((rc != 0)); then
    record "$name" failed=true rc=$rc timed_out=$([[ $rc == 124 || $rc == 137 ]] && echo true \
      || echo false) row_s=$seconds limit_s=$limit command="$*" \
      stderr_tail="$(tail -c 1500 "$TMP/err")"
  fi
}

echo "== nvidia-smi"
nvidia-smi 2>&1 || echo "nvidia-smi: not available"
echo "== versions (PYTHON=$PYTHON, PEER_PYTHON=$PEER_PYTHON)"
run_row versions "$PYTHON" -c '
import json, platform, jax, jaxlib, flax, optax
print(json.dumps({"python": platform.python_version(), "jax": jax.__version__,
                  "jaxlib": jaxlib.__version__, "flax": flax.__version__,
                  "optax": optax.__version__, "backend": jax.default_backend(),
                  "devices": [str(d) for d in jax.devices()],
                  "device_kind": jax.devices()[0].device_kind,
                  "default_matmul_precision": jax.config.jax_default_matmul_precision}))'
run_row peer_versions "$PEER_PYTHON" -c '
import json, torch
print(json.dumps({"torch": torch.__version__, "cuda": torch.version.cuda,
                  "cuda_available": torch.cuda.is_available(),
                  "device_name": torch.cuda.get_device_name() if torch.cuda.is_available()
                                 else None}))'
BACKEND=$("$PYTHON" -c 'import jax; print(jax.default_backend())' 2>/dev/null)
if [[ $BACKEND != gpu && $TINY != 1 ]]; then
  echo "JAX's backend with $PYTHON is '$BACKEND', not 'gpu': see the set-up at the top of $0," \
    "or GPU_SUITE_TINY=1 to test the suite on the CPU."
  record suite failed=true reason="JAX backend '$BACKEND' with $PYTHON, not gpu"
  exit 2
fi

BENCH=(benchmarks/step_throughput.py)
run_row peak "$PYTHON" "${BENCH[@]}" --peak-only
for dtype in $DTYPES; do
  for workload in $WORKLOADS; do
    steps=$STEPS
    [[ $workload == stylegan2_cifar && $TINY != 1 ]] && steps=16
    args=(--workload "$workload" --dtype "$dtype" --steps "$steps" --repeats "$REPEATS"
          "${SIZE[@]}")
    # The DCGAN example's algorithm, as its peer: the generator update reuses the fakes.
    [[ $workload == dcgan64 ]] && args+=(--reuse-fakes)
    if [[ -n $PEER_MODES && $workload != stylegan2_cifar ]]; then
      args+=(--peer "$PEER_PYTHON" --peer-modes "$PEER_MODES" --rounds "$ROUNDS"
             --peer-timeout "$PEER_TIMEOUT_S" "${PEER_SIZE[@]}")
    fi
    run_row "${workload}_${dtype}" "$PYTHON" "${BENCH[@]}" "${args[@]}"
  done
done
run_row flops_check "$PYTHON" "${BENCH[@]}" --workload sngan32 --dtype float32 --steps "$STEPS" \
  --repeats 1 --check-flops "${SIZE[@]}"
echo "== done in ${SECONDS} s: $(grep -c . "$RESULTS") lines in $RESULTS" \
  "($(grep -c '"failed": true' "$RESULTS") failed, $(grep -c '"skipped"' "$RESULTS") skipped)"
