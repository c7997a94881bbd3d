#!/usr/bin/env bash
# The real-world corpus (corpus/, issue 22) built by kiln and by BuildKit
# (Docker 20.10, ../shared/bench/setup-anchors.sh dockerd) in one session:
# per project a cold build (the build cache emptied, the stand-in bases
# kept, as after `docker builder prune -af`) and a no-change rebuild,
# one tool right after the other. Both builders reach the package
# registries through the host's network, each builder's default.
#
# usage: bench/corpus.sh [-n REPS] [PROJECT ...]   (root; needs dockerd)
# Prints a markdown table of medians (seconds) and ratios kiln/BuildKit.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=1
[ "${1:-}" = -n ] && { reps=$2; shift 2; }
work=${BENCH_WORK:-/var/tmp/kiln-corpus-bench}
kiln=$PWD/target/release/kiln
docker=/usr/bin/docker
store=$work/store
export DOCKER_BUILDKIT=1
cargo build -q --release -p kiln-cli
rm -rf "$work" && mkdir -p "$work/bases"

projects=("$@")
if [ ${#projects[@]} -eq 0 ]; then
  for d in corpus/*/smoke.json; do projects+=("$(basename "$(dirname "$d")")"); done
fi

# The stand-ins: built once by kiln, loaded into docker (corpus/record.py
# does the same), so both builders start from the same images.
cp corpus/bases/Dockerfile "$work/bases/"
cp /etc/ssl/certs/ca-certificates.crt "$work/bases/host-ca.crt"
"$kiln" --root "$store" import "${KILN_TEST_DEBIAN_TAR:-/var/cache/kiln-tests/debian-bookworm.tar}" debian:bookworm >/dev/null
"$kiln" --root "$store" tag debian:bookworm debian:bookworm-slim
names=(debian:bookworm)
for b in debian-ca=debian:12 python=python:3.11 node=node:18 rust=rust:1 golang=golang:1 nginx=nginx:1; do
  "$kiln" --root "$store" build -q --target "${b%%=*}" -t "kiln-corpus/${b#*=}" "$work/bases" >/dev/null
  names+=("kiln-corpus/${b#*=}")
done
"$kiln" --root "$store" save -o "$work/bases.tar" "${names[@]}"
$docker load -q -i "$work/bases.tar" >/dev/null
$docker tag debian:bookworm debian:bookworm-slim

. bench/lib-corpus.sh
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>>"$work/errors.log" || { echo FAIL; return; }; e=$(date +%s.%N); printf '%.2f\n' "$(echo "$e - $s" | bc)"; }
median() { grep -v FAIL | sort -n | awk '{a[NR]=$1} END {if (!NR) print "FAIL"; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { [[ $1 == FAIL || $2 == FAIL ]] && { echo -; return; }; printf '%.2f\n' "$(echo "scale=3; $1 / $2" | bc)"; }

echo "| project | kiln cold | BuildKit cold | kiln/BuildKit | kiln rebuild | BuildKit rebuild |"
echo "|---|---|---|---|---|---|"
for p in "${projects[@]}"; do
  mapfile -t f < <(flags "$p")
  mapfile -t df < <(docker_file "$p")
  kc=() bc=() kr=() br=()
  for _ in $(seq "$reps"); do
    "$kiln" --root "$store" builder prune -a -f >/dev/null
    $docker builder prune -a -f >/dev/null
    kc+=("$(secs "$kiln" --root "$store" build -q "${f[@]}" -t "bench/$p" "corpus/$p/context")")
    kr+=("$(secs "$kiln" --root "$store" build -q "${f[@]}" -t "bench/$p" "corpus/$p/context")")
    bc+=("$(secs $docker build -q --network=host "${f[@]}" "${df[@]}" -t "bench/$p" "corpus/$p/context")")
    br+=("$(secs $docker build -q --network=host "${f[@]}" "${df[@]}" -t "bench/$p" "corpus/$p/context")")
  done
  k=$(printf '%s\n' "${kc[@]}" | median) b=$(printf '%s\n' "${bc[@]}" | median)
  printf '| %s | %s | %s | %s | %s | %s |\n' "$p" "$k" "$b" "$(ratio "$k" "$b")" \
    "$(printf '%s\n' "${kr[@]}" | median)" "$(printf '%s\n' "${br[@]}" | median)"
done
