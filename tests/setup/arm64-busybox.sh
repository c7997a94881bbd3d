#!/usr/bin/env bash
# Debian's busybox-static for arm64, for the multi-platform tests: fetched
# with an arm64-only apt source list that is removed again at once, so the
# machine's apt is left as it was. Idempotent; needs root. Prints the
# path of the busybox binary.
set -euo pipefail
out_dir=${KILN_TEST_CACHE:-/var/cache/kiln-tests}
out="$out_dir/busybox-arm64"
if [ -x "$out" ]; then echo "$out"; exit 0; fi
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
work=$(mktemp -d)
chmod 755 "$work"  # apt downloads as _apt
list=/etc/apt/sources.list.d/kiln-tests-arm64.sources
cleanup() {
  rm -f "$list"
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$list" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm
Components: main
Architectures: arm64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
arch_opt=(-o APT::Architectures::=arm64 -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::Etc::sourcelist=$list" -o Dir::State::Lists="$work/lists")
mkdir -p "$work/lists/partial"
apt-get "${arch_opt[@]}" -qq update
(cd "$work" && apt-get "${arch_opt[@]}" -qq download busybox-static:arm64)
dpkg-deb -x "$work"/busybox-static_*_arm64.deb "$work/x"
mkdir -p "$out_dir"
install -m 0755 "$work/x/bin/busybox" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
