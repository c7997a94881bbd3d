#!/usr/bin/env bash
# A debian:bookworm root filesystem tarball for the tests that run apt-get
# (the rootless one: apt drops to _apt, uid 42), made with debootstrap from
# the machine's Debian mirror, the way bench/setup-anchors makes its base
# image: no package lists, no device nodes, no host identity files.
# Idempotent; needs root. Prints the tarball's path.
set -euo pipefail
out=${KILN_TEST_DEBIAN_TAR:-${KILN_TEST_CACHE:-/var/cache/kiln-tests}/debian-bookworm.tar}
if [ -s "$out" ]; then echo "$out"; exit 0; fi
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${DEBIAN_MIRROR:-${mirror:-http://deb.debian.org/debian}}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/log" 2>&1 || {
  tail -20 "$work/log" >&2; exit 1; }
r="$work/rootfs"
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
  "$r"/dev/* "$r"/etc/resolv.conf "$r"/etc/hostname
mkdir -p "$r/var/lib/apt/lists/partial" "$(dirname "$out")"
tar -C "$r" --numeric-owner --xattrs -cf "$out.tmp" .
mv "$out.tmp" "$out"
echo "$out"
