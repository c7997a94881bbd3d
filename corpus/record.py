#!/usr/bin/env python3
"""Records each corpus project's expected.json from Docker 20.10's BuildKit.

Run once per project when it is added or its Dockerfile changes, on a
machine with dockerd up (../shared/bench/setup-anchors.sh dockerd) and a
kiln binary: the stand-in bases are built by kiln and loaded into docker,
so both builders start from the same images. Usage:

    corpus/record.py [--kiln target/release/kiln] [PROJECT ...]

What it writes is what cli/tests/corpus.rs checks kiln's image against:
the image config's fields a Dockerfile sets, every file under the
project's `roots` (type, mode, owner, size, sha256, link target) and the
smoke command's output.
"""
import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

CORPUS = os.path.dirname(os.path.abspath(__file__))
# (target in bases/Dockerfile, tag)
BASES = [("debian-ca", "debian:12"), ("python", "python:3.11"), ("node", "node:18"),
         ("rust", "rust:1"), ("golang", "golang:1"), ("nginx", "nginx:1")]
# Debian's 20.10 client, whose `docker build` is BuildKit without buildx.
DOCKER = "/usr/bin/docker"
CONFIG_FIELDS = ["Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts",
                 "Volumes", "Healthcheck", "Labels", "StopSignal", "Shell", "OnBuild"]


def run(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def projects():
    return sorted(d for d in os.listdir(CORPUS)
                  if os.path.isfile(os.path.join(CORPUS, d, "smoke.json")))


def load_bases(kiln, store):
    """Builds the stand-ins with kiln and loads them into docker."""
    env = dict(os.environ, KILN_ROOT=store)
    ctx = tempfile.mkdtemp()
    shutil.copy(os.path.join(CORPUS, "bases", "Dockerfile"), ctx)
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", os.path.join(ctx, "host-ca.crt"))
    debian = os.environ.get("KILN_TEST_DEBIAN_TAR", "/var/cache/kiln-tests/debian-bookworm.tar")
    run(kiln, "import", debian, "debian:bookworm", env=env, stdout=subprocess.DEVNULL)
    names = ["debian:bookworm"]
    for target, base in BASES:
        name = "kiln-corpus/" + base
        run(kiln, "build", "-q", "--target", target, "-t", name, ctx, env=env,
            stdout=subprocess.DEVNULL)
        names.append(name)
    archive = os.path.join(ctx, "bases.tar")
    run(kiln, "save", "-o", archive, *names, env=env)
    run(DOCKER, "load", "-q", "-i", archive)
    run(DOCKER, "tag", "debian:bookworm", "debian:bookworm-slim")


def tar_path(name):
    """A tar entry's name as a path relative to the root: no ./, no slashes."""
    while name.startswith("./"):
        name = name[2:]
    return "" if name == "." else name.strip("/")


def file_entries(tar, roots, exclude):
    """The tar's entries under `roots`, minus `exclude`, docker-export paths."""
    def wanted(path):
        p = "/" + path
        inside = any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)
        out = any(p == e or p.startswith(e.rstrip("/") + "/") for e in exclude)
        return inside and not out

    content = {}
    entries = []
    for m in tar.getmembers():
        path = tar_path(m.name)
        if not path:
            continue
        e = {"path": path, "mode": "%04o" % (m.mode & 0o7777), "uid": m.uid, "gid": m.gid}
        if m.isreg():
            data = tar.extractfile(m).read()
            content[path] = (len(data), hashlib.sha256(data).hexdigest())
            e.update(type="file", size=content[path][0], sha256=content[path][1])
        elif m.islnk():
            size, sha = content[tar_path(m.linkname)]
            e.update(type="file", size=size, sha256=sha)
        elif m.isdir():
            e["type"] = "dir"
        elif m.issym():
            e.update(type="symlink", target=m.linkname)
        else:
            e["type"] = "other"
        if wanted(path):
            entries.append(e)
    return sorted(entries, key=lambda e: e["path"])


def for_docker_20(dockerfile):
    """The Dockerfile as Docker 20.10's built-in frontend can read it, or None
    if it already can. That frontend predates heredocs, and a `# syntax=`
    line would make it pull its frontend from Docker Hub, which is out of
    reach here. A `RUN [flags] [cmd] <<WORD` heredoc becomes
    `RUN [flags] printf '%s\\n' LINES... | cmd` (cmd defaulting to the
    shell), which runs the same script."""
    lines = open(dockerfile).read().split("\n")
    out, changed, i = [], False, 0
    heredoc = re.compile(r"^(\s*RUN\s+(?:--\S+\s+)*)(.*?)<<-?(['\"]?)(\w+)\3\s*$", re.I | re.S)
    while i < len(lines):
        if i == 0 and re.match(r"#\s*syntax\s*=", lines[0]):
            changed, i = True, 1
            continue
        # One instruction: its physical lines joined at trailing backslashes.
        start, logical = i, lines[i]
        while logical.endswith("\\") and i + 1 < len(lines):
            i += 1
            logical = logical[:-1] + " " + lines[i].strip()
        i += 1
        m = heredoc.match(logical)
        if m is None:
            if re.search(r"<<-?['\"]?\w+['\"]?\s*$", logical) and not logical.lstrip().startswith("#"):
                sys.exit(f"{dockerfile}:{start + 1}: a heredoc record.py cannot unroll")
            out.extend(lines[start:i])
            continue
        prefix, cmd, word = m.group(1), m.group(2).strip() or "/bin/sh", m.group(4)
        body = []
        while lines[i].strip() != word:
            body.append(lines[i])
            i += 1
        i += 1
        quoted = " ".join("'" + b.replace("'", "'\\''") + "'" for b in body)
        out.append(f"{prefix}printf '%s\\n' {quoted} | {cmd}")
        changed = True
    return "\n".join(out) if changed else None


def record(name):
    d = os.path.join(CORPUS, name)
    spec = json.load(open(os.path.join(d, "smoke.json")))
    tag = "kiln-corpus-record/" + name
    cmd = [DOCKER, "build", "-q", "--network=host", "-t", tag]
    if spec.get("target"):
        cmd += ["--target", spec["target"]]
    for k, v in (spec.get("build_args") or {}).items():
        cmd += ["--build-arg", f"{k}={v}"]
    context = os.path.join(d, "context")
    rewritten = for_docker_20(os.path.join(context, "Dockerfile"))
    if rewritten is not None:
        tmp = tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False)
        tmp.write(rewritten)
        tmp.close()
        cmd += ["-f", tmp.name]
    run(*cmd, context, env=dict(os.environ, DOCKER_BUILDKIT="1"), stdout=subprocess.DEVNULL)
    info = json.loads(subprocess.check_output([DOCKER, "image", "inspect", tag]))[0]
    config = {k: info["Config"].get(k) for k in CONFIG_FIELDS if info["Config"].get(k)}
    cid = subprocess.check_output([DOCKER, "create", tag]).decode().strip()
    try:
        exported = subprocess.check_output([DOCKER, "export", cid])
    finally:
        run(DOCKER, "rm", cid, stdout=subprocess.DEVNULL)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        files = file_entries(tar, spec["roots"], spec.get("exclude", []))
    smoke = spec["smoke"]
    run_cmd, args = [DOCKER, "run", "--rm", "--network=none"], []
    entrypoint = smoke.get("entrypoint")
    if isinstance(entrypoint, str):
        run_cmd += ["--entrypoint", entrypoint]
    elif entrypoint:
        # A list: its executable, then its arguments before the command's.
        run_cmd += ["--entrypoint", entrypoint[0]]
        args = entrypoint[1:]
    run_cmd += [tag] + args + (smoke.get("cmd") or [])
    out = subprocess.run(run_cmd, capture_output=True, text=True, timeout=60)
    if smoke["expect"] not in out.stdout:
        sys.exit(f"{name}: the smoke command's output lacks {smoke['expect']!r}:\n"
                 f"{out.stdout}\n{out.stderr}")
    version = subprocess.check_output(
        [DOCKER, "version", "-f", "{{.Server.Version}}"]).decode().strip()
    how = f"Docker {version} (BuildKit)"
    if rewritten is not None:
        how += ", from the Dockerfile without its # syntax line and with its heredocs unrolled"
    expected = {"recorded_with": how, "config": config,
                "files": files}
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{name}: {len(files)} files, config {sorted(config)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(CORPUS, "..", "target", "debug", "kiln"))
    ap.add_argument("--skip-bases", action="store_true")
    ap.add_argument("project", nargs="*")
    a = ap.parse_args()
    if not a.skip_bases:
        store = tempfile.mkdtemp(prefix="kiln-corpus-bases-")
        try:
            load_bases(os.path.abspath(a.kiln), store)
        finally:
            subprocess.run([os.path.abspath(a.kiln), "--root", store, "prune", "-a", "-f"],
                           capture_output=True)
            shutil.rmtree(store, ignore_errors=True)
    failed = []
    for name in a.project or projects():
        try:
            record(name)
        except (subprocess.CalledProcessError, KeyError, OSError) as e:
            print(f"{name}: FAILED: {e}", file=sys.stderr)
            failed.append(name)
    if failed:
        sys.exit("failed: " + " ".join(failed))


if __name__ == "__main__":
    main()
