# Sourced by the registry benchmarks: a release kiln, a work dir removed on
# exit, and Debian's docker-registry on a free 127.0.0.1 port.
#   source bench/lib-registry.sh NAME     sets $kiln, $work, $port
cargo build -q --release -p kiln-cli
kiln=$PWD/target/release/kiln
work=$(mktemp -d "/var/tmp/kiln-$1.XXXXXX")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() { [ -n "${reg_pid:-}" ] && kill "$reg_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/config.yml" >/dev/null 2>&1 &
reg_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.05; done
