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
  "tabular|torch==2.13.0|shap==0.51.0 lime==0.2.0.1 interpret==0.7.8 imodels==3.0.4 PyALE==1.2.0 six"
  "alibi|torch==2.13.0|alibi==0.9.6 click"
  "data|torch==2.13.0|traker==0.3.2 devinterp==2.0.1 loss-landscapes==3.0.6 tensorboard==2.21.0"
  "quantus|torch==2.13.0|quantus==0.6.0"
  "lens|torch==2.13.0|transformer_lens==3.2.1 sae-lens==6.54.12 nnsight==0.8.1 neuronpedia==1.2.1"
  "circuit|torch==2.13.0|circuit-tracer==0.5.0"
  "pyvene|torch==2.13.0|pyvene==0.1.8"
  "saebench|torch==2.13.0|sae-bench==0.6.0"
  # libraries that import torchvision: PyPI's torchvision does not load beside the CPU torch 2.13.0
  # wheel, so this group uses the torch/torchvision pair that lies on these machines' disk
  "vision|torch==2.14.1 torchvision==0.29.1|zennit==0.5.1 torch-lucent==0.1.8 grad-cam==1.5.7 torchray==1.0.0.2 inseq==0.7.1"
)
status=0
summary="$WORK/summary.txt"; : > "$summary"
for group in "${LIBGROUPS[@]}"; do
  name=${group%%|*}; rest=${group#*|}; torchspec=${rest%%|*}; reqs=${rest#*|}
  venv="$WORK/$name"
  if [ ! -x "$venv/bin/python" ]; then
    "$PY" -m venv "$venv"
    # torch pinned in the same command: an unpinned torch pulls a multi-GB CUDA build
    if ! "$venv/bin/pip" install -q $torchspec pyyaml $reqs >"$venv.install.log" 2>&1; then
      echo "$name: install failed (see $venv.install.log): $(tail -1 "$venv.install.log")" | tee -a "$summary"
      continue
    fi
  fi
  if [ "$torchspec" = "torch==2.13.0" ]; then
    # a dependency may pull PyPI's torchvision, which cannot load beside the CPU torch 2.13.0 wheel and
    # then breaks transformers' imports; nothing in these groups needs it
    "$venv/bin/pip" uninstall -y -q torchvision >/dev/null 2>&1 || true
  fi
  pkgs=$(echo "$reqs" | tr ' ' '\n' | sed 's/==.*//' | paste -sd, -)
  echo "== $name ($pkgs)" | tee -a "$summary"
  "$venv/bin/python" tools/check_api_names.py --packages "$pkgs" 2>/dev/null | tee -a "$summary" || status=1
done
# captum lives in the project's own test environment
echo "== captum" | tee -a "$summary"
.venv/bin/python tools/check_api_names.py --packages captum | tee -a "$summary" || status=1
exit $status
