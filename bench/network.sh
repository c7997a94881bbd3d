#!/usr/bin/env bash
# `run --rm true` on a bridge network: kiln's default (a namespace wired
# to kiln0 before the container starts) against podman's default network
# (netavark or CNI, whichever this podman uses; runc, and an open-files
# limit this host allows), then each with the host's network for the
# network's own share. Medians of N runs, with hyperfine when it is
# installed (else a date loop), one engine after the other.
#   bench/network.sh [-n N]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
n=30
[ "${1:-}" = "-n" ] && n=$2
cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" -p kiln-cli
K="$REPO/target/release/kiln"
root=${KILN_BENCH_ROOT:-/var/tmp/kiln-bench-network}
rm -rf "$root"
tar=$(mktemp)
trap 'rm -f "$tar"' EXIT
bash "$REPO/examples/busybox-rootfs.sh" >"$tar"
"$K" --root "$root" import "$tar" busybox >/dev/null
podman=(podman --runtime /usr/bin/runc)
"${podman[@]}" import -q "$tar" localhost/kiln-bench-busybox >/dev/null
ulimits=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # $@: the command
  "$@" >/dev/null # warm-up (and the bridge made on first use)
  for _ in $(seq "$n"); do
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    echo "($t1 - $t0) * 1000" | bc
  done | median
}
kb=$(measure "$K" --root "$root" run --rm busybox true)
kh=$(measure "$K" --root "$root" run --rm --network host busybox true)
pb=$(measure "${podman[@]}" run --rm "${ulimits[@]}" localhost/kiln-bench-busybox true)
ph=$(measure "${podman[@]}" run --rm --network host "${ulimits[@]}" localhost/kiln-bench-busybox true)
"${podman[@]}" rmi -f localhost/kiln-bench-busybox >/dev/null 2>&1 || true
printf 'kiln   run --rm true, bridge: %.1f ms (host network: %.1f ms)\n' "$kb" "$kh"
printf 'podman run --rm true, default network: %.1f ms (host network: %.1f ms)\n' "$pb" "$ph"
echo "podman/kiln (bridge): $(echo "scale=1; $pb / $kb" | bc)"
