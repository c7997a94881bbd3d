#!/usr/bin/env bash
# The users the rootless tests run kiln as (idempotent; needs root):
#   kiln-rootless  with a subordinate id range in /etc/subuid and /etc/subgid
#   kiln-single    with none (kiln then maps only the user itself)
# Debian's useradd gives new users a range on its own; kiln-single's is
# taken away again.
set -euo pipefail
range_start=300000
range_count=65536
for u in kiln-rootless kiln-single; do
  id "$u" >/dev/null 2>&1 || useradd --create-home --shell /bin/sh "$u"
done
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  sed -i '/^kiln-rootless:/d; /^kiln-single:/d' "$f"
  echo "kiln-rootless:$range_start:$range_count" >>"$f"
done
uid=$(id -u kiln-single)
sed -i "/^$uid:/d" /etc/subuid /etc/subgid
echo "rootless test users: $(grep kiln- /etc/subuid | tr '\n' ' ')(kiln-single has no range)"
