#!/usr/bin/env bash
# Container lifecycle latency: `run -d` + `exec true` + `rm -f` of a
# busybox `sleep`, kiln against podman (with runc: crun refuses this
# host's hybrid cgroup layout; its open-files limit kept under this host's
# hard limit) doing the same three commands, one after
# the other in this session. Prints the median of N rounds, in seconds.
#   bench/lifecycle.sh [-n N]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
n=20
[ "${1:-}" = "-n" ] && n=$2
cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" -p kiln-cli
K="$REPO/target/release/kiln"
root=${KILN_BENCH_ROOT:-/var/tmp/kiln-bench-lifecycle}
rm -rf "$root"
tar=$(mktemp)
trap 'rm -f "$tar"' EXIT
bash "$REPO/examples/busybox-rootfs.sh" >"$tar"
"$K" --root "$root" import "$tar" busybox >/dev/null
podman=(podman --runtime /usr/bin/runc)
"${podman[@]}" rm -f -a >/dev/null 2>&1 || true
"${podman[@]}" import -q "$tar" localhost/kiln-bench-busybox >/dev/null
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
round() { # $@: the engine's command line
  local t0 t1 id
  t0=$(date +%s.%N)
  id=$("$@" run -d "${run_flags[@]}" "$image" sleep 60)
  [ -n "$id" ] || { echo "run -d failed" >&2; exit 1; }
  "$@" exec "$id" true
  "$@" rm -f "${rm_flags[@]}" "$id" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
measure() {
  round "$@" >/dev/null # warm-up
  for _ in $(seq "$n"); do round "$@"; done | median
}
image=busybox
run_flags=()
rm_flags=()
ours=$(measure "$K" --root "$root")
image=localhost/kiln-bench-busybox
run_flags=(--network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
# podman's rm -f stops with a 10 s grace period; docker's (and kiln's) kills.
rm_flags=(-t 0)
theirs=$(measure "${podman[@]}")
"${podman[@]}" rmi -f localhost/kiln-bench-busybox >/dev/null 2>&1 || true
echo "kiln   run -d + exec + rm -f: ${ours}s"
echo "podman run -d + exec + rm -f: ${theirs}s"
echo "podman/kiln: $(echo "scale=2; $theirs / $ours" | bc)"
