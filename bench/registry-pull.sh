#!/usr/bin/env bash
# Pull benchmark (issue: registry client): a 200 MiB, 4-layer image in a
# local docker-registry, pulled by `kiln pull` into an empty store and by
# `skopeo copy` into an empty OCI layout dir. Prints the median of N runs
# of each and kiln's ratio to skopeo (target: <= 1.3).
#   bench/registry-pull.sh [RUNS]     (needs docker-registry and skopeo)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
source bench/lib-registry.sh pull-bench

# The image: busybox plus four 50 MiB layers of random (incompressible) data.
export KILN_ROOT=$work/src-store
examples/busybox-rootfs.sh | "$kiln" import - busybox >/dev/null
mkdir -p "$work/ctx"
{
  echo "FROM busybox"
  for i in 1 2 3 4; do echo "RUN head -c 52428800 /dev/urandom > /blob$i"; done
} >"$work/ctx/Dockerfile"
"$kiln" build -q -t "127.0.0.1:$port/big:1" --push "$work/ctx" >/dev/null
size=$(du -sm "$work/registry" | cut -f1)
echo "image: 127.0.0.1:$port/big:1, registry holds ${size} MiB"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_it() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

kiln_times=() skopeo_times=()
for i in $(seq "$runs"); do
  rm -rf "$work/pull-store" "$work/oci"
  sync
  kiln_times+=("$(time_it env KILN_ROOT="$work/pull-store" "$kiln" pull "127.0.0.1:$port/big:1")")
  sync
  skopeo_times+=("$(time_it skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/big:1" "oci:$work/oci:big")")
done
k=$(printf '%s\n' "${kiln_times[@]}" | median)
s=$(printf '%s\n' "${skopeo_times[@]}" | median)
printf 'kiln pull:   median %.2fs  (runs: %s)\n' "$k" "${kiln_times[*]}"
printf 'skopeo copy: median %.2fs  (runs: %s)\n' "$s" "${skopeo_times[*]}"
printf 'ratio kiln/skopeo: %.2f (target <= 1.3)\n' "$(echo "$k / $s" | bc -l)"
