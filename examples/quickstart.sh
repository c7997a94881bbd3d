#!/usr/bin/env bash
# From a fresh Debian machine to a kiln image: installs what is needed,
# builds and installs kiln, makes a busybox base image from Debian's
# busybox-static (no registry needed), builds examples/hello (multi-stage,
# heredoc, COPY, RUN) twice - the second time entirely from the cache - and
# runs the result.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v busybox >/dev/null || [ ! -x /bin/busybox ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq busybox-static
fi
cargo install --quiet --locked --path cli
export PATH="$HOME/.cargo/bin:$PATH"
examples/busybox-rootfs.sh | kiln import - busybox --change 'CMD ["sh"]'
kiln images
kiln inspect busybox | head -n 20
kiln save -o /tmp/busybox-kiln.tar busybox && echo "saved /tmp/busybox-kiln.tar (docker archive + OCI layout)"
kiln run --rm busybox sh -c 'echo "hello from a kiln container: pid $$ on $(hostname)"'
kiln build --progress plain -t hello examples/hello
kiln build --progress plain -t hello examples/hello   # again: every step CACHED
kiln run --rm hello
kiln history hello
