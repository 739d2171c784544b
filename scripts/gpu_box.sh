#!/usr/bin/env bash
# Workers on every GPU of this machine against one study: scripts/gpu_box.sh [per_gpu] -- <search overrides>
#   scripts/gpu_box.sh 2 -- study=greff_jsb search.storage=postgresql+psycopg://user@db-host/rnnbench
# Prepares the studies once, then starts per_gpu workers per visible GPU, each seeing one GPU and
# CPU cores // workers torch threads. Run it on several machines against one PostgreSQL storage (or a
# journal file on a shared filesystem) and they share the study. Ctrl-C stops every worker; their
# trials are saved and continue when the script runs again.
set -euo pipefail
per_gpu=1
if [[ $# -gt 0 && $1 != "--" ]]; then per_gpu=$1; shift; fi
[[ ${1:-} == "--" ]] && shift
python -m rnnbench.search prepare "$@"
gpus=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null || true)
[[ -n ${CUDA_VISIBLE_DEVICES:-} ]] && gpus=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES")
[[ -z $gpus ]] && { echo "gpu_box.sh: no GPU found (nvidia-smi); use python -m rnnbench.search search.workers=N" >&2; exit 2; }
workers=$(( $(wc -w <<<"$gpus") * per_gpu ))
threads=$(( $(nproc) / workers )); (( threads < 1 )) && threads=1
pids=()
trap 'kill -INT "${pids[@]}" 2>/dev/null; wait' INT TERM
for gpu in $gpus; do
  for _ in $(seq "$per_gpu"); do
    CUDA_VISIBLE_DEVICES=$gpu python -m rnnbench.search worker "$@" "search.threads=$threads" &
    pids+=($!)
  done
done
echo "gpu_box.sh: $workers workers on GPUs $(echo $gpus)"
wait
python -m rnnbench.search status "$(python - "$@" <<'PY'
import sys
from rnnbench.search.command import read_command_line
from rnnbench.search.study import storage_url
cfg = read_command_line(sys.argv[1:]).cfg
print(storage_url(cfg.search.storage, cfg.results_dir))
PY
)"
