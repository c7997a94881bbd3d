#!/usr/bin/env python3
"""Compares kiln's and BuildKit's whole images of corpus projects, beyond
the roots the test checks: every path's type, mode and owner, and the
content of files that both builders should make byte for byte.

Needs both images built and tagged: kiln's in KILN_ROOT as
bench/<project> and docker's as bench/<project> (bench/corpus.sh leaves
both). Usage: corpus/compare-images.py [--kiln PATH] [PROJECT ...]

Content is compared only outside paths whose bytes float between two
builds of the same Dockerfile (package indexes, logs, caches, bytecode,
files stamped with the build's time); a difference there says nothing.
"""
import argparse
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

CORPUS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, CORPUS)
from record import DOCKER, tar_path  # noqa: E402
# Bytes differ between any two builds here (times, random ids, indexes).
FLOATING = re.compile(r"(^|/)(__pycache__|\.cache|\.npm|\.yarn|\.next/cache)(/|$)|\.pyc$|"
                      r"^var/(lib/apt/lists|cache|log)/|^var/lib/dpkg/|^etc/(ld\.so\.cache|shadow|gshadow|passwd-|group-|shadow-|gshadow-)$|"
                      r"(^|/)(RECORD|direct_url\.json|INSTALLER)$|\.log$|^tmp/|^root/\.|"
                      r"(^|/)node_modules/\.(package-lock\.json|yarn-integrity)$|^etc/machine-id$|"
                      r"^usr/share/info/dir$|^usr/local/share/\.wh\.|^etc/ssl/certs/")


def entries(data):
    out, content = {}, {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar.getmembers():
            p = tar_path(m.name)
            if not p:
                continue
            e = (m.type if not m.islnk() else tarfile.REGTYPE, m.mode & 0o7777, m.uid, m.gid)
            if m.isreg():
                content[p] = hashlib.sha256(tar.extractfile(m).read()).hexdigest()
            elif m.islnk():
                content[p] = content.get(tar_path(m.linkname))
            elif m.issym():
                e += (m.linkname,)
            out[p] = e
    return out, content


def kiln_tar(kiln, name):
    spec = json.load(open(os.path.join(CORPUS, name, "smoke.json")))
    with tempfile.NamedTemporaryFile(suffix=".tar") as f:
        cmd = [kiln, "build", "-q", "-o", f"type=tar,dest={f.name}"]
        if spec.get("target"):
            cmd += ["--target", spec["target"]]
        subprocess.run(cmd + [os.path.join(CORPUS, name, "context")], check=True,
                       stdout=subprocess.DEVNULL)
        return open(f.name, "rb").read()


def docker_tar(name):
    cid = subprocess.check_output([DOCKER, "create", "bench/" + name]).decode().strip()
    try:
        return subprocess.check_output([DOCKER, "export", cid])
    finally:
        subprocess.run([DOCKER, "rm", cid], stdout=subprocess.DEVNULL)


def compare(kiln, name, show):
    k, kc = entries(kiln_tar(kiln, name))
    d, dc = entries(docker_tar(name))
    # docker export adds the container's own files.
    for p in (".dockerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf", "dev", "proc", "sys"):
        d.pop(p, None)
        k.pop(p, None)
    d = {p: e for p, e in d.items() if not p.startswith(("dev/", "proc/", "sys/"))}
    # docker's init layer also adds /etc/mtab (-> /proc/mounts), and so an
    # /etc even to a scratch image.
    d.pop("etc/mtab", None)
    if "etc" not in k and not any(p.startswith("etc/") for p in d):
        d.pop("etc", None)
    only_k = sorted(set(k) - set(d))
    only_d = sorted(set(d) - set(k))
    meta = sorted(p for p in set(k) & set(d) if k[p] != d[p])
    data = sorted(p for p in set(kc) & set(dc)
                  if kc[p] != dc[p] and not FLOATING.search(p))
    print(f"| {name} | {len(d)} | {len(only_k)} | {len(only_d)} | {len(meta)} | {len(data)} |")
    for label, paths, fmt in (("only in kiln", only_k, lambda p: k[p]),
                              ("only in BuildKit", only_d, lambda p: d[p]),
                              ("type/mode/owner differ", meta, lambda p: f"kiln {k[p]} BuildKit {d[p]}"),
                              ("content differs", data, lambda p: "")):
        for p in paths[:show]:
            print(f"    {label}: /{p} {fmt(p)}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(CORPUS, "..", "target", "release", "kiln"))
    ap.add_argument("--show", type=int, default=8)
    ap.add_argument("project", nargs="*")
    a = ap.parse_args()
    names = a.project or sorted(n for n in os.listdir(CORPUS)
                                if os.path.isfile(os.path.join(CORPUS, n, "smoke.json")))
    print("| project | paths | only in kiln | only in BuildKit | type/mode/owner differ | content differs |")
    print("|---|---|---|---|---|---|")
    for n in names:
        compare(os.path.abspath(a.kiln), n, a.show)


if __name__ == "__main__":
    main()
