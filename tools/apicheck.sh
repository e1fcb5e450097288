#!/usr/bin/env bash
# Install the libraries the records name, in compatible groups (one venv each, torch pinned), and check
# that every API name the records give resolves in them (tools/check_api_names.py). Run by CI.
#   tools/apicheck.sh [WORKDIR]      (default .apicheck/; venvs are reused when present)
set -uo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-.apicheck}
mkdir -p "$WORK"
PY=${PY:-python3}
# group name | pip requirements (pinned versions that install together with torch 2.13.0 on Python 3.11)
LIBGROUPS=(
  "tabular|shap==0.51.0 lime==0.2.0.1 interpret==0.7.8 imodels==3.0.4 PyALE==1.2.0 six"
  "alibi|alibi==0.9.6"
  "data|traker==0.3.2 devinterp==2.0.1 loss-landscapes==3.0.6 tensorboard==2.21.0"
  "quantus|quantus==0.6.0"
  "lens|transformer_lens==3.2.1 sae-lens==6.54.12 nnsight==0.8.1 neuronpedia==1.2.1"
  "circuit|circuit-tracer==0.5.0"
  "pyvene|pyvene==0.1.8"
  "saebench|sae-bench==0.6.0"
)
status=0
summary="$WORK/summary.txt"; : > "$summary"
for group in "${LIBGROUPS[@]}"; do
  name=${group%%|*}; reqs=${group#*|}
  venv="$WORK/$name"
  if [ ! -x "$venv/bin/python" ]; then
    "$PY" -m venv "$venv"
    # torch pinned in the same command: an unpinned torch pulls a multi-GB CUDA build
    if ! "$venv/bin/pip" install -q "torch==2.13.0" pyyaml $reqs >"$venv.install.log" 2>&1; then
      echo "$name: install failed (see $venv.install.log): $(tail -1 "$venv.install.log")" | tee -a "$summary"
      continue
    fi
  fi
  pkgs=$(echo "$reqs" | tr ' ' '\n' | sed 's/==.*//' | paste -sd, -)
  echo "== $name ($pkgs)" | tee -a "$summary"
  "$venv/bin/python" tools/check_api_names.py --packages "$pkgs" 2>/dev/null | tee -a "$summary" || status=1
done
# captum lives in the project's own test environment
echo "== captum" | tee -a "$summary"
.venv/bin/python tools/check_api_names.py --packages captum | tee -a "$summary" || status=1
exit $status
