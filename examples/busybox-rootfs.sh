#!/usr/bin/env bash
# Writes a busybox root filesystem tarball to stdout, made from Debian's
# busybox-static package: a base image that needs no registry.
#   examples/busybox-rootfs.sh | kiln import - busybox --change 'CMD ["sh"]'
# Deterministic: the same busybox binary always gives the same bytes.
# BUSYBOX=PATH uses another busybox binary (another architecture's, e.g.
# tests/setup/arm64-busybox.sh's); its applets are the host busybox's list.
set -euo pipefail
host_bb=/bin/busybox   # Debian's busybox-static installs it here
bb=${BUSYBOX:-$host_bb}
[ -x "$host_bb" ] || { echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
[ -f "$bb" ] || { echo "$bb: no such busybox binary" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,var,proc,sys,dev}
cp "$bb" "$dir/bin/busybox"
for applet in $("$host_bb" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$dir/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' >"$dir/etc/group"
chmod 1777 "$dir/tmp"
chmod 700 "$dir/root"
tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - .
