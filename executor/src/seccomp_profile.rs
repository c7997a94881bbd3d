//! A custom seccomp profile in docker's JSON format
//! (`--security-opt seccomp=FILE`): `defaultAction`, `defaultErrnoRet`,
//! and `syscalls` entries with `names`, `action`, `errnoRet`, `args` and
//! `includes`/`excludes` by capability and architecture, as moby reads
//! them. Names this kernel's table lacks are skipped (as libseccomp does
//! for docker).
//!
//! seccompiler builds a filter with one action for matches and one for
//! the rest, so the profile becomes one filter per action: the default
//! action's (its allow list matched, the rest denied) first, then one per
//! other action (its syscalls matched, the rest allowed). The kernel runs
//! every filter and keeps the most restrictive answer, the latest
//! installed winning ties, so a narrower rule beats the default.

use crate::error::ExecError;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

/// A compiled custom profile, shared by the specs that use it.
#[derive(Debug, Clone)]
pub struct SeccompProfile(pub(crate) Arc<Vec<BpfProgram>>);

impl PartialEq for SeccompProfile {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SeccompProfile {}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    #[serde(default)]
    names: Vec<String>,
    /// The old single-name form.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// docker's name for this machine's architecture in `arches`.
const ARCH: &str = if cfg!(target_arch = "x86_64") {
    "amd64"
} else {
    "arm64"
};

fn invalid(why: String) -> ExecError {
    ExecError::Invalid(format!("seccomp profile: {why}"))
}

fn action(name: &str, errno: Option<u32>, default_errno: u32) -> Result<SeccompAction, ExecError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => SeccompAction::Allow,
        "SCMP_ACT_ERRNO" => SeccompAction::Errno(errno.unwrap_or(default_errno)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SeccompAction::KillThread,
        "SCMP_ACT_KILL_PROCESS" => SeccompAction::KillProcess,
        "SCMP_ACT_TRAP" => SeccompAction::Trap,
        "SCMP_ACT_LOG" => SeccompAction::Log,
        "SCMP_ACT_TRACE" => SeccompAction::Trace(errno.unwrap_or(default_errno)),
        other => return Err(invalid(format!("unsupported action {other}"))),
    })
}

/// A stable key for grouping rules by action (SeccompAction is not Ord).
fn action_key(a: &SeccompAction) -> String {
    format!("{a:?}")
}

fn condition(a: &Arg) -> Result<SeccompCondition, ExecError> {
    let (op, value) = match a.op.as_str() {
        "SCMP_CMP_EQ" => (SeccompCmpOp::Eq, a.value),
        "SCMP_CMP_NE" => (SeccompCmpOp::Ne, a.value),
        "SCMP_CMP_LT" => (SeccompCmpOp::Lt, a.value),
        "SCMP_CMP_LE" => (SeccompCmpOp::Le, a.value),
        "SCMP_CMP_GT" => (SeccompCmpOp::Gt, a.value),
        "SCMP_CMP_GE" => (SeccompCmpOp::Ge, a.value),
        // docker: value is the mask, valueTwo what the masked arg equals.
        "SCMP_CMP_MASKED_EQ" => (SeccompCmpOp::MaskedEq(a.value), a.value_two),
        other => return Err(invalid(format!("unsupported argument operator {other}"))),
    };
    SeccompCondition::new(a.index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| invalid(format!("argument {}: {e}", a.index)))
}

/// Whether an entry applies to a container with `capabilities`.
fn applies(e: &Entry, capabilities: u64) -> bool {
    let has = |cap: &String| crate::capability_bit(cap).is_some_and(|bit| capabilities & bit != 0);
    let arch = |arches: &Vec<String>| arches.iter().any(|a| a == ARCH);
    (e.includes.caps.iter().all(has))
        && (e.includes.arches.is_empty() || arch(&e.includes.arches))
        && !e.excludes.caps.iter().any(has)
        && !arch(&e.excludes.arches)
}

type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// Per syscall, its rules so far; None once one entry matches every call.
type Pending = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn compile(
    rules: Rules,
    matched: SeccompAction,
    rest: SeccompAction,
) -> Result<BpfProgram, ExecError> {
    let arch = if cfg!(target_arch = "x86_64") {
        TargetArch::x86_64
    } else {
        TargetArch::aarch64
    };
    let filter =
        SeccompFilter::new(rules, rest, matched, arch).map_err(|e| invalid(e.to_string()))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| invalid(e.to_string()))
}

/// Compiles docker's JSON profile `json` for a container with
/// `capabilities` (`1 << CAP_*` bits).
pub fn compile_profile(json: &str, capabilities: u64) -> Result<SeccompProfile, ExecError> {
    let profile: Profile =
        serde_json::from_str(json).map_err(|e| invalid(format!("not docker's format: {e}")))?;
    let default_errno = profile.default_errno_ret.unwrap_or(libc::EPERM as u32);
    let default = action(&profile.default_action, None, default_errno)?;
    // Rules grouped by action; for each syscall, entries are OR-ed and an
    // entry without args matches every call (an empty rule list).
    let mut groups: BTreeMap<String, (SeccompAction, Pending)> = BTreeMap::new();
    for entry in profile.syscalls.iter().filter(|e| applies(e, capabilities)) {
        let act = action(&entry.action, entry.errno_ret, default_errno)?;
        let conditions = entry
            .args
            .iter()
            .flatten()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()?;
        let (_, syscalls) = groups
            .entry(action_key(&act))
            .or_insert_with(|| (act.clone(), BTreeMap::new()));
        for name in entry.names.iter().chain(&entry.name) {
            let Ok(nr) = syscalls::Sysno::from_str(name) else {
                continue;
            };
            let slot = syscalls.entry(nr.id() as i64).or_insert(Some(Vec::new()));
            match slot {
                // Already unconditional.
                None => {}
                Some(_) if conditions.is_empty() => *slot = None,
                Some(rules) => rules.push(
                    SeccompRule::new(conditions.clone()).map_err(|e| invalid(e.to_string()))?,
                ),
            }
        }
    }
    let rules = |syscalls: Pending| -> Rules {
        syscalls
            .into_iter()
            .map(|(nr, r)| (nr, r.unwrap_or_default()))
            .collect()
    };
    let allow_key = action_key(&SeccompAction::Allow);
    let mut programs = Vec::new();
    if default != SeccompAction::Allow {
        let allowed = groups
            .remove(&allow_key)
            .map(|(_, s)| s)
            .unwrap_or_default();
        programs.push(compile(
            rules(allowed),
            SeccompAction::Allow,
            default.clone(),
        )?);
    } else {
        groups.remove(&allow_key);
    }
    for (key, (act, syscalls)) in groups {
        if key == action_key(&default) || syscalls.is_empty() {
            continue;
        }
        programs.push(compile(rules(syscalls), act, SeccompAction::Allow)?);
    }
    Ok(SeccompProfile(Arc::new(programs)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_shaped_profiles_compile_and_bad_ones_are_named() {
        let caps = crate::DEFAULT_CAPABILITIES;
        let p = compile_profile(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
                {"names":["read","write","no_such_call"],"action":"SCMP_ACT_ALLOW"},
                {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
                {"names":["bpf"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#,
            caps,
        )
        .unwrap();
        // The allow list with EPERM for the rest, then clone3's ENOSYS.
        assert_eq!(p.0.len(), 2);
        let deny_list =
            compile_profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}"#, caps)
                .unwrap();
        assert_eq!(deny_list.0.len(), 1);
        let e = compile_profile(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#, caps).unwrap_err();
        assert!(e.to_string().contains("SCMP_ACT_NOTIFY"), "{e}");
        let e = compile_profile("{}", caps).unwrap_err();
        assert!(e.to_string().contains("docker's format"), "{e}");
    }
}
