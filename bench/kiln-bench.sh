#!/usr/bin/env bash
# Runs ../shared/bench's scenarios with kiln (BUILDER=ours) and prints
# "scenario median_seconds" lines, like the BuildKit and buildah anchors.
#
#   bench/kiln-bench.sh [-n REPS] [-s steps30,parallel4,...]
#
# Uses a release build of kiln and its own store (KILN_BENCH_ROOT, default
# /var/tmp/kiln-bench). The base image is the bench's busybox when
# setup-anchors.sh made it (same manifest digest as the anchors use), else
# the one examples/busybox-rootfs.sh makes from Debian's busybox-static.
#
# KILN_BENCH_USER=NAME runs kiln as that ordinary user (rootless; its
# store defaults to /var/tmp/kiln-bench-NAME), to compare with root.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SHARED="${SHARED:-$REPO/../shared}"
BENCH_USER="${KILN_BENCH_USER:-}"
export KILN_ROOT="${KILN_BENCH_ROOT:-/var/tmp/kiln-bench${BENCH_USER:+-$BENCH_USER}}"
cargo build --quiet --release --manifest-path "$REPO/Cargo.toml" -p kiln-cli
KILN="$REPO/target/release/kiln"
if [ -n "$BENCH_USER" ]; then
  # kiln as the user, through a wrapper every hook and the runner call.
  mkdir -p "$KILN_ROOT"
  chown "$BENCH_USER:" "$KILN_ROOT"
  home=$(getent passwd "$BENCH_USER" | cut -d: -f6)
  cat >"$KILN_ROOT.kiln" <<WRAP
#!/bin/sh
exec setpriv --reuid=$(id -u "$BENCH_USER") --regid=$(id -g "$BENCH_USER") --init-groups \
  env HOME=$home KILN_ROOT=$KILN_ROOT "$KILN" "\$@"
WRAP
  chmod +x "$KILN_ROOT.kiln"
  KILN="$KILN_ROOT.kiln"
fi
export KILN

# The prune hook: drop every image and cache record, then bring the bases
# back: the docker archives setup-anchors.sh leaves (busybox and
# debian:bookworm, named by their archives), unpacked at once, as BuildKit's
# daemon keeps its bases unpacked.
cat >"$KILN_ROOT.prune" <<PRUNE
#!/usr/bin/env bash
set -e
"$KILN" prune -a -f >/dev/null
anchors="${BENCH_ANCHORS:-/var/lib/bench-anchors}"
if [ -f "\$anchors/busybox.docker.tar" ]; then
  "$KILN" load -i "\$anchors/busybox.docker.tar" >/dev/null
  "$KILN" load -i "\$anchors/debian.docker.tar" >/dev/null
  "$KILN" run --rm --network none busybox true
  "$KILN" run --rm --network none debian:bookworm true
else
  bash "$REPO/examples/busybox-rootfs.sh" | "$KILN" import - busybox >/dev/null
fi
PRUNE
chmod +x "$KILN_ROOT.prune"
mkdir -p "$KILN_ROOT"
"$KILN_ROOT.prune"

export OURS_BUILD="$KILN build --progress plain --network host"
export OURS_PRUNE="$KILN_ROOT.prune"
export OURS_ID="$HERE/ours-id.sh"
export OURS_DIFFIDS="$HERE/ours-diffids.sh"
export OURS_EXPORT="$HERE/ours-export.sh"
export BENCH_WAIT_QUIET="${BENCH_WAIT_QUIET:-10}"
exec "$SHARED/bench/run.sh" ours "$@"
