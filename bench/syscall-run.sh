#!/usr/bin/env bash
# One syscall-heavy RUN (dpkg -i and -r of eight small Debian packages,
# eight times over: many small files, an fsync per file, maintainer
# scripts, many short processes) timed three ways in
# one session: inside a kiln RUN, inside a BuildKit RUN (Docker 20.10,
# ../shared/bench/setup-anchors.sh), and on the bare host (chroot into a
# copy of the same debian:bookworm rootfs). The RUN steps' own times come
# from the plain progress (`#N DONE 1.2s`), so the figures compare the
# process, not the build around it.
#
# usage: bench/syscall-run.sh [-n REPS]   (root; needs dockerd running)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=5
[ "${1:-}" = -n ] && reps=$2
work=${BENCH_WORK:-/var/tmp/kiln-syscall-bench}
tar=${KILN_TEST_DEBIAN_TAR:-/var/cache/kiln-tests/debian-bookworm.tar}
kiln=$PWD/target/release/kiln
docker=/usr/bin/docker
rm -rf "$work" && mkdir -p "$work/ctx/debs" "$work/rootfs"
cargo build -q --release -p kiln-cli

# The packages (from the machine's Debian mirror) and the base.
(cd "$work/ctx/debs" && apt-get download -qq less tree jq libjq1 libonig5 file libmagic1 libmagic-mgc 2>/dev/null)
tar -xf "$tar" -C "$work/rootfs"
cat > "$work/ctx/Dockerfile" <<'DF'
FROM debian:bookworm
ENV PKGS="less tree jq libjq1 libonig5 file libmagic1 libmagic-mgc"
COPY debs /debs
RUN for i in 1 2 3 4 5 6 7 8; do dpkg -i /debs/*.deb && dpkg -r $PKGS; done >/dev/null
DF
"$kiln" --root "$work/store" import "$tar" debian:bookworm >/dev/null
$docker import "$tar" debian:bookworm >/dev/null

step_time() { # the DONE time of the RUN step in plain progress on stdin
  awk '/RUN for i in/ {n=$1} n && $1==n && $2=="DONE" {sub("s","",$3); print $3}' | tail -n 1
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

host=() kilns=() bk=()
for i in $(seq "$reps"); do
  rm -rf "$work/host" && cp -a "$work/rootfs" "$work/host" && cp -a "$work/ctx/debs" "$work/host/debs"
  s=$(date +%s.%N); PKGS="less tree jq libjq1 libonig5 file libmagic1 libmagic-mgc" chroot "$work/host" sh -c 'for i in 1 2 3 4 5 6 7 8; do dpkg -i /debs/*.deb && dpkg -r $PKGS; done >/dev/null'; e=$(date +%s.%N)
  host+=("$(echo "$e - $s" | bc)")
  kilns+=("$("$kiln" --root "$work/store" build --no-cache --progress=plain "$work/ctx" 2>&1 | step_time)")
  bk+=("$(DOCKER_BUILDKIT=1 $docker build --network=host --no-cache --progress=plain "$work/ctx" 2>&1 | step_time)")
done
h=$(printf '%s\n' "${host[@]}" | median)
k=$(printf '%s\n' "${kilns[@]}" | median)
b=$(printf '%s\n' "${bk[@]}" | median)
echo "dpkg -i/-r of 8 packages x8, median of $reps (s): host $h, kiln $k, BuildKit $b"
echo "host:     ${host[*]}"
echo "kiln:     ${kilns[*]}"
echo "buildkit: ${bk[*]}"
