//! Real containers on a busybox base (Debian's busybox-static): isolation,
//! users, exit codes, mounts, and the diff, with kiln's own executor. The
//! cases live in common/cases.rs; containers_runc.rs runs the same ones on
//! runc to cross-check. Needs root, like the executor.

use kiln_executor::{run, ExecError, Exit, Mount, MountSource, Network, Spec, Stdio, Stream};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

fn backend() -> kiln_executor::Runtime {
    kiln_executor::Runtime::Native
}

include!("common/cases.rs");
