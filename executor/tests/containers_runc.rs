//! The container cases of common/cases.rs run by runc on an OCI bundle
//! kiln writes: the same expectations as the native executor, so the two
//! cross-check each other's isolation.

use kiln_executor::{run, ExecError, Exit, Mount, MountSource, Network, Spec, Stdio, Stream};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

fn backend() -> kiln_executor::Runtime {
    let runc = ["/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("runc is not installed: .ci/run installs it (apt-get install runc)");
    kiln_executor::Runtime::Oci(runc.into())
}

include!("common/cases.rs");
