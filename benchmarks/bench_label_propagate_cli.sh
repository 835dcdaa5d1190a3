#!/usr/bin/env bash
# Wall time of `frugalseg label propagate` (the default flow engine) over the 8 DAVIS clips
# (+1…+10 from frame 0) and over cityscapes_dev (±10 around frame 19), with one process
# (flows on every core, or on one thread) and with two processes (Lightning, CPU, a core each).
#
#     bash benchmarks/bench_label_propagate_cli.sh [DATA] [PYTHONPATH of the code to time]
#
# Code from before issue 28 has no --flow-threads: time it with BEFORE=1 (those runs left out).
#
# DATA defaults to ../shared/data; the 8 DAVIS clips of davis_dev and davis_hard are linked into
# one folder. Each run writes a fresh store and prints its summary line and its wall time.
set -euo pipefail
data=${1:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
code=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/davis8/JPEGImages/480p" "$work/davis8/Annotations/480p"
for folder in davis_dev davis_hard; do
  for sequence in "$data/$folder"/JPEGImages/480p/*; do
    name=$(basename "$sequence")
    ln -s "$sequence" "$work/davis8/JPEGImages/480p/$name"
    ln -s "$data/$folder/Annotations/480p/$name" "$work/davis8/Annotations/480p/$name"
  done
done
python=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
cd "$work"  # python -m puts the working folder first on the path: not the checkout's package
run() {  # name, then the arguments after `label propagate`
  local name=$1 start end
  shift
  start=$(date +%s.%N)
  PYTHONPATH=$code "$python" -m frugalseg label propagate --no-progress --out "$work/store-$RANDOM" "$@" \
    2>/dev/null | grep '^label propagate'
  end=$(date +%s.%N)
  printf '%s: %.1f s wall\n' "$name" "$(echo "$end - $start" | bc)"
}
davis=(--format davis --root "$work/davis8" --split all --offsets 1,2,3,4,5,6,7,8,9,10)
cityscapes=(--format cityscapes --root "$data/cityscapes_dev" --split train)
run "DAVIS, one process" "${davis[@]}"
[[ -n ${BEFORE:-} ]] || run "DAVIS, one process, flows on one thread" "${davis[@]}" --flow-threads 1
run "DAVIS, two processes" "${davis[@]}" --accelerator cpu --devices 2
run "Cityscapes, one process" "${cityscapes[@]}"
[[ -n ${BEFORE:-} ]] || run "Cityscapes, one process, flows on one thread" "${cityscapes[@]}" --flow-threads 1
run "Cityscapes, two processes" "${cityscapes[@]}" --accelerator cpu --devices 2
