//! Docker's default seccomp profile, expressed as what it denies to a
//! container with Docker's default capability set: the syscalls it only
//! allows with CAP_SYS_ADMIN and friends (which we never grant), the ones
//! it never allows, and `clone` with namespace flags. `clone3` answers
//! ENOSYS so libc falls back to `clone`, whose flags can be checked.
//! Compiled once per process with seccompiler.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Syscalls a default-capability docker container cannot make, by name
/// (for OCI runtime bundles) and number (for our own filter).
pub(crate) const DENIED: &[(&str, i64)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("delete_module", libc::SYS_delete_module),
    ("finit_module", libc::SYS_finit_module),
    ("get_mempolicy", libc::SYS_get_mempolicy),
    ("init_module", libc::SYS_init_module),
    ("ioperm", libc::SYS_ioperm),
    ("iopl", libc::SYS_iopl),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mbind", libc::SYS_mbind),
    ("mount", libc::SYS_mount),
    ("move_pages", libc::SYS_move_pages),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("pivot_root", libc::SYS_pivot_root),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("ptrace", libc::SYS_ptrace),
    ("quotactl", libc::SYS_quotactl),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("set_mempolicy", libc::SYS_set_mempolicy),
    ("setns", libc::SYS_setns),
    ("settimeofday", libc::SYS_settimeofday),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("sysfs", libc::SYS_sysfs),
    ("_sysctl", libc::SYS__sysctl),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("uselib", libc::SYS_uselib),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("ustat", libc::SYS_ustat),
    ("vhangup", libc::SYS_vhangup),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("syslog", libc::SYS_syslog),
];

pub(crate) const NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// Syncing calls a build step's filter answers with success at once
/// (`Spec::deferred_sync`).
const SYNCS: &[i64] = &[
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_sync,
    libc::SYS_syncfs,
    libc::SYS_sync_file_range,
];

fn compile(rules: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<BpfProgram, String> {
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Two programs: the deny list (EPERM), and `clone3` → ENOSYS. When both
/// are installed the kernel takes the most restrictive answer per call.
fn build() -> Result<[BpfProgram; 2], String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &(_, nr) in DENIED {
        rules.insert(nr, vec![]);
    }
    // clone(flags, ...) with any namespace flag: one rule per flag (rules
    // for a syscall are OR-ed).
    let mut clone_rules = Vec::new();
    for bit in 0..64u32 {
        let flag = 1u64 << bit;
        if NAMESPACE_FLAGS & flag != 0 {
            let c = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )
            .map_err(|e| e.to_string())?;
            clone_rules.push(SeccompRule::new(vec![c]).map_err(|e| e.to_string())?);
        }
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = compile(rules, libc::EPERM)?;
    let clone3 = compile(BTreeMap::from([(libc::SYS_clone3, vec![])]), libc::ENOSYS)?;
    Ok([deny, clone3])
}

/// The filter that makes syncing calls return 0 without syncing
/// (`SECCOMP_RET_ERRNO` with data 0 is success). x86_64 only.
pub(crate) fn deferred_sync_program() -> Option<&'static BpfProgram> {
    static PROGRAM: OnceLock<Option<BpfProgram>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let rules = SYNCS.iter().map(|&nr| (nr, vec![])).collect();
            cfg!(target_arch = "x86_64")
                .then(|| compile(rules, 0).ok())
                .flatten()
        })
        .as_ref()
}

/// The compiled filter (x86_64 only; on other architectures no filter is
/// installed and `kiln` says so once).
pub(crate) fn programs() -> Option<&'static [BpfProgram; 2]> {
    static PROGRAM: OnceLock<Option<[BpfProgram; 2]>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            if cfg!(target_arch = "x86_64") {
                build().ok()
            } else {
                None
            }
        })
        .as_ref()
}
