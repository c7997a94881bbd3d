//! The second backend: an OCI runtime bundle run by an external runtime
//! (runc, crun). It exists to cross-check the native executor: the same
//! integration tests run against both.
//!
//! kiln still provides the root filesystem: a helper child in a fresh mount
//! namespace mounts the overlay at the bundle's rootfs and execs
//! `RUNTIME run`, so the runtime sees the merged tree and no mount ever
//! lands in the host's namespace.

use crate::{ExecError, Limits, Network, DEFAULT_CAPABILITIES};
use rustix::process::Resource;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;

/// One mount in the bundle.
pub(crate) enum OciMount {
    Bind {
        source: String,
        target: String,
        readonly: bool,
    },
    Overlay {
        lower: String,
        upper: String,
        work: String,
        target: String,
    },
    Tmpfs {
        size: String,
        target: String,
        readonly: bool,
    },
}

pub(crate) struct BundleInputs<'a> {
    pub argv: &'a [String],
    pub env: &'a [String],
    pub cwd: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub groups: &'a [u32],
    pub hostname: &'a str,
    pub network: Network,
    pub mounts: Vec<OciMount>,
    pub limits: Limits,
    pub rlimits: Vec<(String, u64, u64)>,
    pub shm_size: u64,
}

const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Writes `bundle/config.json` (validated through oci-spec's types).
pub(crate) fn write_bundle(
    bundle: &Path,
    rootfs: &Path,
    i: BundleInputs<'_>,
) -> Result<(), ExecError> {
    let caps: Vec<&str> = (0..CAP_NAMES.len())
        .filter(|c| DEFAULT_CAPABILITIES & (1 << c) != 0)
        .map(|c| CAP_NAMES[c])
        .collect();
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "mount"}),
        json!({"type": "uts"}),
        json!({"type": "ipc"}),
    ];
    if i.network == Network::None {
        namespaces.push(json!({"type": "network"}));
    }
    let config = json!({
        "ociVersion": "1.0.2",
        "root": {"path": rootfs.display().to_string(), "readonly": false},
        "hostname": i.hostname,
        "process": {
            "terminal": false,
            "user": {"uid": i.uid, "gid": i.gid, "additionalGids": i.groups},
            "args": i.argv,
            "env": i.env,
            "cwd": i.cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true,
            "rlimits": i.rlimits.iter().map(|(t, soft, hard)| json!({"type": t, "soft": soft, "hard": hard})).collect::<Vec<_>>(),
        },
        "mounts": bundle_mounts(&i.mounts, i.shm_size),
        "linux": {
            "namespaces": namespaces,
            "resources": resources(&i.limits),
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                            "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                            "/sys/devices/virtual/powercap", "/proc/interrupts"],
            "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            "seccomp": seccomp(),
        },
    });
    // Validate the shape with oci-spec's types before a runtime sees it.
    let spec: oci_spec::runtime::Spec = serde_json::from_value(config)
        .map_err(|e| ExecError::Invalid(format!("generated OCI runtime config is invalid: {e}")))?;
    fs::create_dir_all(bundle).map_err(|source| ExecError::Io {
        path: bundle.to_path_buf(),
        source,
    })?;
    let path = bundle.join("config.json");
    let text = serde_json::to_vec_pretty(&spec).map_err(|e| ExecError::Invalid(e.to_string()))?;
    fs::write(&path, text).map_err(|source| ExecError::Io { path, source })
}

/// /proc, a nodev /dev with the allowed devices bound from the host's
/// (the runtime then finds them and makes none: runc's own cgroup list
/// adds tun, so the cgroup alone would not hold — see devices.rs), the
/// ptys, /dev/shm, a read-only /sys, then the step's own mounts.
fn bundle_mounts(step: &[OciMount], shm_size: u64) -> Vec<Value> {
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={}k", shm_size.div_ceil(1024))]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
    ];
    for d in crate::devices::ALLOWED {
        mounts.push(json!({
            "destination": d.target.to_string_lossy(), "type": "bind",
            "source": d.host.to_string_lossy(), "options": ["bind", "nosuid", "noexec"],
        }));
    }
    for m in step {
        mounts.push(match m {
            OciMount::Bind { source, target, readonly } => json!({
                "destination": target, "type": "bind", "source": source,
                "options": ["rbind", "nodev", if *readonly { "ro" } else { "rw" }],
            }),
            OciMount::Overlay { lower, upper, work, target } => json!({
                "destination": target, "type": "overlay", "source": "overlay",
                "options": ["nodev".to_string(), format!("lowerdir={lower}"), format!("upperdir={upper}"), format!("workdir={work}")],
            }),
            OciMount::Tmpfs { size, target, readonly } => json!({
                "destination": target, "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", format!("size={size}"), if *readonly { "ro" } else { "rw" }],
            }),
        });
    }
    mounts
}

/// Memory and pids limits, and the same device list as the native
/// executor as cgroup rules: everything denied, then the allowed nodes
/// and the ptys.
fn resources(limits: &crate::Limits) -> Value {
    let mut resources = json!({});
    if let Some(m) = limits.memory {
        resources["memory"] = json!({"limit": m, "swap": m});
    }
    if let Some(p) = limits.pids {
        resources["pids"] = json!({"limit": p});
    }
    let mut cpu = json!({});
    if let Some(q) = limits.cpu_quota_us {
        cpu["quota"] = json!(q);
        cpu["period"] = json!(crate::cgroup::CPU_PERIOD_US);
    }
    if let Some(s) = limits.cpu_shares {
        cpu["shares"] = json!(s);
    }
    if let Some(c) = &limits.cpuset_cpus {
        cpu["cpus"] = json!(c);
    }
    if cpu.as_object().is_some_and(|o| !o.is_empty()) {
        resources["cpu"] = cpu;
    }
    let mut devices = vec![json!({"allow": false, "access": "rwm"})];
    for d in crate::devices::ALLOWED {
        devices.push(json!({"allow": true, "type": "c", "major": d.major, "minor": d.minor, "access": "rwm"}));
    }
    let (ptmx_major, ptmx_minor) = crate::devices::PTMX;
    devices.push(json!({"allow": true, "type": "c", "major": ptmx_major, "minor": ptmx_minor, "access": "rwm"}));
    devices.push(
        json!({"allow": true, "type": "c", "major": crate::devices::PTS_MAJOR, "access": "rwm"}),
    );
    resources["devices"] = json!(devices);
    resources
}

/// The native executor's seccomp rules: the denied syscalls, clone3
/// (ENOSYS, so libcs fall back to clone), and clone with any namespace
/// flag (one rule per flag: a single masked rule would block only when
/// every bit is set).
fn seccomp() -> Value {
    let denied: Vec<&str> = crate::seccomp::DENIED.iter().map(|(n, _)| *n).collect();
    let mut syscalls = vec![
        json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM}),
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
    ];
    for bit in 0..64u32 {
        let flag = 1u64 << bit;
        if crate::seccomp::NAMESPACE_FLAGS & flag != 0 {
            syscalls.push(json!({"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}]}));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    })
}

/// The container's /etc files and the step's mounts as bundle mounts: a
/// copy-on-write mount becomes an overlay with its own upper directory.
fn helper_mounts(
    state: &Path,
    dirs: &crate::prepare::StateDirs,
    resolved: &[crate::Mount],
) -> Result<Vec<OciMount>, ExecError> {
    use crate::prepare::container_path;
    use crate::MountSource;
    let mut mounts = Vec::new();
    for name in ["hosts", "resolv.conf", "hostname"] {
        mounts.push(OciMount::Bind {
            source: dirs.etc.join(name).display().to_string(),
            target: format!("/etc/{name}"),
            readonly: false,
        });
    }
    for (n, m) in resolved.iter().enumerate() {
        let target = container_path(&m.target)?;
        mounts.push(match &m.source {
            MountSource::Bind(src) => OciMount::Bind {
                source: src.display().to_string(),
                target,
                readonly: m.readonly,
            },
            MountSource::Copy(src) => {
                let (up, wk) = (
                    state.join(format!("oci-mounts/{n}/upper")),
                    state.join(format!("oci-mounts/{n}/work")),
                );
                for d in [&up, &wk] {
                    fs::create_dir_all(d).map_err(|source| ExecError::Io {
                        path: d.clone(),
                        source,
                    })?;
                }
                OciMount::Overlay {
                    lower: src.display().to_string(),
                    upper: up.display().to_string(),
                    work: wk.display().to_string(),
                    target,
                }
            }
            MountSource::Tmpfs { size } => OciMount::Tmpfs {
                size: if *size == 0 {
                    "50%".to_string()
                } else {
                    size.to_string()
                },
                target,
                readonly: m.readonly,
            },
            MountSource::Tree(_) => {
                return Err(ExecError::Invalid(
                    "mount trees need the native runtime".into(),
                ))
            }
            MountSource::Secret { .. } | MountSource::Cache { .. } => {
                return Err(ExecError::Invalid(
                    "internal error: secret and cache mounts must be resolved first".into(),
                ))
            }
        });
    }
    Ok(mounts)
}

/// Turns `prepared` into the OCI helper: a child that only mounts the
/// overlay at the bundle's rootfs and execs `RUNTIME run` on a bundle
/// that describes the rest (the same capabilities, seccomp rules, masks,
/// namespaces, mounts and limits as the native executor). Returns what
/// signalling the container needs: (runtime, its state root, the id).
#[allow(clippy::too_many_arguments)]
pub(crate) fn helper(
    runtime: &Path,
    spec: &crate::Spec,
    dirs: &crate::prepare::StateDirs,
    resolved: &[crate::Mount],
    env: &[String],
    cwd: &str,
    user: &crate::user::ResolvedUser,
    prepared: &mut crate::prepare::Prepared,
) -> Result<(std::path::PathBuf, std::path::PathBuf, String), ExecError> {
    use crate::prepare::cstring;
    use std::os::unix::ffi::OsStrExt;
    if spec.security.seccomp_profile.is_some()
        || !spec.devices.is_empty()
        || spec.pid_host
        || spec.ipc != crate::Ipc::Private
        || matches!(spec.network, Network::Join(_))
    {
        return Err(ExecError::Invalid(
            "a custom seccomp profile, --device, --pid, --ipc and bridge networks need kiln's \
             own executor, \
             not an external OCI runtime"
                .into(),
        ));
    }
    // Unique per spawn: runtimes derive cgroup paths from the id, so two
    // containers must never share one.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = format!(
        "kiln-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let state = &spec.state_dir;
    let runtime_state = state.join("runtime-state");
    let mounts = helper_mounts(state, dirs, resolved)?;
    let bundle = state.join("bundle");
    write_bundle(
        &bundle,
        &dirs.rootfs,
        BundleInputs {
            argv: &spec.argv,
            env,
            cwd,
            uid: user.uid,
            gid: user.gid,
            groups: &user.groups,
            hostname: &spec.hostname,
            network: spec.network.clone(),
            mounts,
            limits: spec.limits.clone(),
            shm_size: spec.shm_size,
            rlimits: prepared
                .rlimits
                .iter()
                .map(|(r, l)| {
                    let max = u64::MAX;
                    (
                        format!("RLIMIT_{}", rlimit_name(*r)),
                        l.current.unwrap_or(max),
                        l.maximum.unwrap_or(max),
                    )
                })
                .collect(),
        },
    )?;
    let argv = [
        runtime.as_os_str().as_bytes(),
        b"--root",
        runtime_state.as_os_str().as_bytes(),
        b"run",
        b"--bundle",
        bundle.as_os_str().as_bytes(),
        id.as_bytes(),
    ]
    .iter()
    .map(|a| cstring(a, "runtime argument"))
    .collect::<Result<_, _>>()?;
    let envp = vec![cstring(format!("PATH={}", crate::DEFAULT_PATH), "PATH")?];
    prepared.runtime_helper = true;
    prepared.set_command(runtime.as_os_str().as_bytes(), argv, envp)?;
    prepared.mounts.clear();
    Ok((runtime.to_path_buf(), runtime_state, id))
}

/// The OCI name of an rlimit (without `RLIMIT_`).
fn rlimit_name(r: Resource) -> String {
    crate::spec::RLIMITS
        .iter()
        .find(|(_, x)| *x == r)
        .map_or("NOFILE", |(n, _)| n)
        .to_ascii_uppercase()
}
