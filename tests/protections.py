#!/usr/bin/env python3
"""Every protection has a test that fails when the protection is removed.

This script checks that claim: for each protection it removes the code
(one textual edit), runs the test that guards it, expects it to FAIL, and
restores the file. Slow (each case recompiles); not part of CI.

    python3 tests/protections.py           # every case
    python3 tests/protections.py nodev     # cases whose name contains "nodev"

Needs root: the guarding tests run real containers.
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (protection, file, text to find, replacement, cargo test arguments)
CASES = [
    ("close-on-exec before exec", "executor/src/child.rs",
     "    sys::cloexec_from(3)?;\n", "",
     "-p kiln-executor --test escape inherited_descriptors"),
    ("nodev root filesystem", "executor/src/child.rs",
     "        MountAttrFlags::MOUNT_ATTR_NODEV,\n    )\n    .map_err(e)?;\n    move_mount(",
     "        MountAttrFlags::empty(),\n    )\n    .map_err(e)?;\n    move_mount(",
     "-p kiln-executor --test escape native_container"),
    ("nodev /dev", "executor/src/child.rs",
     "            | MountAttrFlags::MOUNT_ATTR_NODEV\n            | MountAttrFlags::MOUNT_ATTR_STRICTATIME,",
     "            | MountAttrFlags::MOUNT_ATTR_STRICTATIME,",
     "-p kiln-executor --test escape native_container"),
    ("nodev bind mounts", "executor/src/child.rs",
     "                let mut attrs = MountAttrFlags::MOUNT_ATTR_NODEV;\n                if m.readonly {\n                    attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;\n                }\n                sys::mount_setattr",
     "                let mut attrs = MountAttrFlags::empty();\n                if m.readonly {\n                    attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;\n                }\n                sys::mount_setattr",
     "-p kiln-executor --test escape native_container"),
    ("init closes every descriptor", "executor/src/child/init.rs",
     "    sys::close_from(0);\n", "",
     "-p kiln-executor --test escape native_init"),
    ("init is not dumpable", "executor/src/child/init.rs",
     "DumpableBehavior::NotDumpable", "DumpableBehavior::Dumpable",
     "-p kiln-executor --test escape native_init"),
    ("containers die with kiln", "executor/src/child.rs",
     "set_parent_process_death_signal(Some(rustix::process::Signal::KILL))",
     "set_parent_process_death_signal(None)",
     "-p kiln-executor --test escape containers_die"),
    ("runc: nodev binds", "executor/src/oci.rs",
     '"options": ["rbind", "nodev",', '"options": ["rbind",',
     "-p kiln-executor --test escape runc"),
    ("runc: nodev /dev", "executor/src/oci.rs",
     '["nosuid", "nodev", "strictatime"', '["nosuid", "strictatime"',
     "-p kiln-executor --test escape runc"),
    ("runc dies with its helper", "executor/src/lib.rs",
     "flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID;", "flags = libc::CLONE_NEWNS;",
     "-p kiln-executor --test escape containers_die"),
    ("expansion depth limit", "parser/src/shell.rs",
     "        if self.depth >= MAX_NESTING {", "        if self.depth >= usize::MAX {",
     "-p kiln-parser deep_nesting"),
    ("overlay xattrs are not applied", "store/src/apply.rs",
     "                if is_overlay_xattr(xname) {\n                    continue;\n                }\n",
     "", "-p kiln-store --test layers overlay_xattrs"),
    ("save verifies blobs", "store/src/digest.rs",
     "        if n == 0 && !buf.is_empty() {", "        if false {",
     "-p kiln-cli --test escape save_refuses"),
    ("a lost meta.db is refused", "store/src/lib.rs",
     "    if db_len > 0 {\n        return Ok(());", "    if true {\n        return Ok(());",
     "-p kiln-cli --test escape a_lost_database"),
    ("store modes are tightened", "store/src/lib.rs",
     "            if old & 0o077 != 0 {", "            if false {",
     "-p kiln-cli --test escape the_store_is_private"),
    ("leases are recorded", "store/src/db.rs",
     "                stmt.execute(params![lease.id, kind.as_str(), digest.to_string()])?;\n",
     "", "-p kiln-cli --test escape prune_never_takes"),
    ("RUN --network=host is an entitlement", "frontends/dockerfile/src/lower/run.rs",
     '            "host" if self.opts.allow_host_network => Ok(Network::Host),',
     '            "host" if true => Ok(Network::Host),',
     "-p kiln-cli --test escape host_network"),
    ("a file in a snapshot's place is replaced", "store/src/lib.rs",
     "        if fs::symlink_metadata(&final_dir).is_ok_and(|m| !m.is_dir()) {",
     "        if false {", "-p kiln-cli --test escape damaged_snapshots"),
    ("control characters are escaped", "parser/src/safe_text.rs",
     "        '\\0'..='\\x1f' | '\\x7f'..='\\u{9f}' => true,",
     "        '\\0'..='\\x08' => true,", "-p kiln-cli --test escape hostile"),
    ("layer apply resolves inside the root", "store/src/apply.rs",
     "        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;",
     "        let how = ResolveFlags::NO_MAGICLINKS;",
     "-p kiln-store --test layers hostile_tars"),
    ("ADD unpacking resolves inside the root", "store/src/apply.rs",
     "        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;",
     "        let how = ResolveFlags::NO_MAGICLINKS;",
     "-p kiln-builder --test add_unpack hostile_archives"),
    ("the lowering goldens see the graph", "solver/src/canonical.rs",
     '            e.tag("manifest").str(manifest_digest);',
     '            e.tag("manifest");',
     "-p kiln-frontend-dockerfile --test lower_golden"),
    ("the dependency rule is enforced", "frontends/dockerfile/Cargo.toml",
     "kiln-solver.workspace = true\n", "kiln-solver.workspace = true\nkiln-store.workspace = true\n",
     "-p kiln-tests --test architecture"),
    ("cache source= resolves inside the cache", "executor/src/cache_mount.rs",
     "ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,", "ResolveFlags::NO_MAGICLINKS,",
     "-p kiln-cli --test fidelity mount"),
    ("a copy's destination symlink resolves inside the root", "builder/src/fileop.rs",
     "        ResolveFlags::IN_ROOT,\n    )\n}", "        ResolveFlags::empty(),\n    )\n}",
     "-p kiln-cli --test escape copies_through_planted_symlinks"),
    ("--rm dirs of killed runs are swept", "cli/src/run.rs",
     "    crate::containers::sweep(store, true);\n", "",
     "-p kiln-cli --test crash random_sigkills"),
    ("a Dockerfile's git source never uses the invoker's ssh agent", "builder/src/git.rs",
     '            .env_remove("SSH_AUTH_SOCK")\n', "",
     "-p kiln-cli --test ssh git_over_ssh"),
]


def main():
    only = sys.argv[1] if len(sys.argv) > 1 else ""
    failures = 0
    for name, rel, old, new, args in CASES:
        if only and only not in name:
            continue
        path = os.path.join(ROOT, rel)
        original = open(path).read()
        if old not in original:
            print(f"STALE  {name}: the protected code moved in {rel}; update this script")
            failures += 1
            continue
        try:
            open(path, "w").write(original.replace(old, new, 1))
            result = subprocess.run(["cargo", "test", "-q"] + args.split(), cwd=ROOT,
                                    capture_output=True, timeout=900)
        finally:
            open(path, "w").write(original)
            # What an escaping hostile tar wrote while its protection was off.
            for leftover in ("/escaped", "/tmp/escaped"):
                if os.path.lexists(leftover):
                    os.remove(leftover)
        out = result.stdout.decode(errors="replace")
        if result.returncode == 0:
            print(f"MISSED {name}: `cargo test {args}` passed without the protection")
            failures += 1
        elif "test result: FAILED" in out or "panicked" in out or "overflowed its stack" in (
                out + result.stderr.decode(errors="replace")):
            print(f"ok     {name}: `cargo test {args}` fails without it")
        else:
            # Not a test failure: a compile error, a missing tool...
            print(f"BROKEN {name}: `cargo test {args}` did not run:")
            print(result.stderr.decode(errors="replace")[-1500:])
            failures += 1
    # Containers a removed protection let outlive their test are killed.
    subprocess.run(["pkill", "-9", "-f", "kiln-orphan-check|kiln-crash"])
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
