# Shared by bench/corpus.sh and bench/corpus-steps.sh (sourced, from the
# repository root, with $work set): what to pass each builder for one
# corpus project.

flags() { # the build flags corpus/NAME/smoke.json asks for, one a line
  python3 - "corpus/$1/smoke.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
out = []
if s.get("target"):
    out += ["--target", s["target"]]
for k, v in (s.get("build_args") or {}).items():
    out += ["--build-arg", f"{k}={v}"]
for f in out:
    print(f)
PY
}
docker_file() { # -f FILE when Docker 20.10 needs record.py's copy of the Dockerfile
  python3 - "corpus/$1/context/Dockerfile" "$work/$1.Dockerfile" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("record", "corpus/record.py")
record = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record)
rewritten = record.for_docker_20(sys.argv[1])
if rewritten is not None:
    open(sys.argv[2], "w").write(rewritten)
    print("-f")
    print(sys.argv[2])
PY
}
