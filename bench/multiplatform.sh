#!/usr/bin/env bash
# Multi-platform build time: `--platform linux/amd64,linux/arm64` against
# each platform built alone (bench/multiplatform/Dockerfile: a shared
# BUILDPLATFORM stage, then an emulated per-platform step). Every build is
# --no-cache; prints medians of N runs and the ratios.
#   bench/multiplatform.sh [-n N]
# Needs qemu-user-static registered (kiln system binfmt --install) and the
# arm64 busybox-static (tests/setup/arm64-busybox.sh).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
n=5
[ "${1:-}" = "-n" ] && n=$2
cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" -p kiln-cli
K="$REPO/target/release/kiln"
root=${KILN_BENCH_ROOT:-/var/tmp/kiln-bench-multiplatform}
rm -rf "$root"
arm_bb=$(bash "$REPO/tests/setup/arm64-busybox.sh")
bash "$REPO/examples/busybox-rootfs.sh" | "$K" --root "$root" import - busybox >/dev/null
BUSYBOX="$arm_bb" bash "$REPO/examples/busybox-rootfs.sh" |
  "$K" --root "$root" import --platform linux/arm64 - busybox >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {
  for _ in $(seq "$n"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$K" --root "$root" build -q --no-cache --platform "$1" -t mp "$HERE/multiplatform" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
  done | median
}
amd=$(measure linux/amd64)
arm=$(measure linux/arm64)
both=$(measure linux/amd64,linux/arm64)
echo "amd64-alone $amd"
echo "arm64-alone $arm"
echo "both $both"
echo "both/amd64-alone $(echo "scale=2; $both / $amd" | bc)"
echo "both/(amd64+arm64 alone) $(echo "scale=2; $both / ($amd + $arm)" | bc)"
