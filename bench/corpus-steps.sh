#!/usr/bin/env bash
# Per-step times of one corpus project's cold build, kiln beside BuildKit
# (Docker 20.10), from each builder's plain progress (`#N [..] RUN ...`
# then `#N DONE 1.2s`): which step is slower, not just which build.
# Run bench/corpus.sh first (it leaves the stand-in bases in both).
#
# usage: bench/corpus-steps.sh PROJECT [-n REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
p=$1; reps=1
[ "${2:-}" = -n ] && reps=$3
work=${BENCH_WORK:-/var/tmp/kiln-corpus-bench}
kiln=$PWD/target/release/kiln
store=$work/store
export DOCKER_BUILDKIT=1
. bench/lib-corpus.sh
mapfile -t f < <(flags "$p")
mapfile -t df < <(docker_file "$p")

# step label -> seconds, from plain progress on stdin
steps() {
  awk '
    /^#[0-9]+ \[/ { n=$1; $1=""; sub(/^ /,""); label[n]=substr($0,1,70) }
    $2=="DONE" && ($1 in label) { t=$3; sub("s","",t); print label[$1] "\t" t }'
}
for i in $(seq "$reps"); do
  "$kiln" --root "$store" builder prune -a -f >/dev/null
  /usr/bin/docker builder prune -a -f >/dev/null
  "$kiln" --root "$store" build --progress=plain "${f[@]}" "corpus/$p/context" 2>&1 | steps > "$work/steps-kiln-$i"
  /usr/bin/docker build --progress=plain --network=host "${f[@]}" "${df[@]}" "corpus/$p/context" 2>&1 | steps > "$work/steps-bk-$i"
done
echo "| step ($p) | kiln | BuildKit |"
echo "|---|---|---|"
python3 - "$work" "$reps" <<'PY'
import statistics, sys
work, reps = sys.argv[1], int(sys.argv[2])
def load(tool):
    runs = []
    for i in range(1, reps + 1):
        d = {}
        for line in open(f"{work}/steps-{tool}-{i}"):
            label, t = line.rstrip("\n").split("\t")
            # "[stage 2/5] RUN x" and "[2/5] RUN x": match on the instruction
            key = label.split("] ", 1)[-1]
            d[key] = float(t)
        runs.append(d)
    return {k: statistics.median(r[k] for r in runs if k in r) for k in runs[0]}
k, b = load("kiln"), load("bk")
for step in k:
    if step.startswith(("FROM", "[internal]")) or (k[step] < 0.05 and b.get(step, 0) < 0.05):
        continue
    print(f"| {step[:60]} | {k[step]:.2f} | {b[step]:.2f} |" if step in b else f"| {step[:60]} | {k[step]:.2f} | - |")
PY
