#!/usr/bin/env bash
# Shared-cache benchmark (issue: shared build cache): the copytree scenario
# (256 MiB + 20,000 files, from ../shared/bench) built cold on machine A
# with --cache-to a local docker-registry, then built on machine B (a clean
# store, the context at another path) with only --cache-from. Prints the
# cold build, the export, and B's build; B should run no RUN step.
#   bench/cache-share.sh        (needs docker-registry; ~1 GB in /var/tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${KILN_SHARED:-../shared}
source bench/lib-registry.sh cache-bench

ctx_a=$work/a/checkout/copytree
ctx_b=$work/b/elsewhere/ci-42
bash "$shared/bench/scenarios/copytree/make-context.sh" "$ctx_a" >/dev/null
mkdir -p "$(dirname "$ctx_b")"
cp -a "$ctx_a" "$ctx_b"
cp "$shared/bench/scenarios/copytree/Dockerfile" "$ctx_a/Dockerfile"
cp "$shared/bench/scenarios/copytree/Dockerfile" "$ctx_b/Dockerfile"

# Both machines have the same busybox base.
base=$work/busybox.tar
KILN_ROOT=$work/base examples/busybox-rootfs.sh | KILN_ROOT=$work/base "$kiln" import - busybox >/dev/null
KILN_ROOT=$work/base "$kiln" save -o "$base" busybox
KILN_ROOT=$work/a/store "$kiln" load -q -i "$base"
KILN_ROOT=$work/b/store "$kiln" load -q -i "$base"

secs() { local s e; s=$(date +%s.%N); "$@" >"$work/out" 2>&1 || { cat "$work/out"; exit 1; }; e=$(date +%s.%N); echo "$e - $s" | bc; }
ref=127.0.0.1:$port/cache:copytree

cold=$(secs env KILN_ROOT="$work/a/store" "$kiln" build -q "$ctx_a")
KILN_ROOT=$work/a/store "$kiln" prune -a -f >/dev/null
KILN_ROOT=$work/a/store "$kiln" load -q -i "$base"
with_export=$(secs env KILN_ROOT="$work/a/store" "$kiln" build -q --cache-to "type=registry,ref=$ref,mode=max" "$ctx_a")
export_only=$(secs env KILN_ROOT="$work/a/store" "$kiln" build -q --cache-to "type=registry,ref=$ref,mode=max" "$ctx_a")
import=$(secs env KILN_ROOT="$work/b/store" "$kiln" build --progress plain --cache-from "type=registry,ref=$ref" "$ctx_b")
ran=$(grep -c ' DONE ' "$work/out" || true)
cached=$(grep -c ' CACHED' "$work/out" || true)
printf 'cold build on A (no cache):                 %6.2fs\n' "$cold"
printf 'cold build on A + --cache-to registry:      %6.2fs\n' "$with_export"
printf 'cached build on A + --cache-to (re-export): %6.2fs\n' "$export_only"
printf 'build on clean B with --cache-from:         %6.2fs  (steps run %s, cached %s)\n' "$import" "$ran" "$cached"
