#!/usr/bin/env bash
# CI for the verl backend: build verl's own venv (CPU only), install this project into it and
# run the verl-importing tests of tests/training/verl_backend/ there. verl pins its own transformers, so it never shares the main venv.
#
# Usage: bash scripts/verl_ci.sh
# Env:   VERL_VENV    venv folder (default: /tmp/shop-r1-verl-venv, outside the work tree)
#        PYTHON       interpreter for the venv (default: python3.11; verl needs 3.10-3.12)
#        VERL_VERSION verl release to test against (default: 0.9.1, what the code targets)
#        VERL_CI_REUSE=1  reuse an existing venv that already imports verl (skips the install)
# Prints the time of each phase; exits with pytest's status (no tests collected counts as 0).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3.11}
VENV=${VERL_VENV:-/tmp/shop-r1-verl-venv}
VERL_VERSION=${VERL_VERSION:-0.9.1}
t_all=$(date +%s)

phase() {  # phase NAME START: print the seconds since START
  echo "== [timing] $1: $(( $(date +%s) - $2 )) s"
}

if [ "${VERL_CI_REUSE:-0}" = "1" ] && "$VENV/bin/python" -c "import verl, transfer_queue" 2>/dev/null; then
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
fi

"$VENV/bin/python" - <<'EOF'
import torch, transformers, verl
print("verl", verl.__version__, "| torch", torch.__version__, "| transformers", transformers.__version__)
EOF

t=$(date +%s)
set +e
# The modules that need verl itself (the rest of the folder runs in the main venv).
mapfile -t verl_tests < <(grep -l 'importorskip("verl")' tests/training/verl_backend/test_*.py)
"$VENV/bin/python" -m pytest -q -p no:cacheprovider "${verl_tests[@]}"
rc=$?
set -e
phase tests "$t"
phase total "$t_all"
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests"
  rc=0
fi
exit "$rc"
