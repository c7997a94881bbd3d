//! `USER name|uid[:group|gid]` resolved through the image's `/etc/passwd`
//! and `/etc/group`, read from the snapshot chain (topmost layer wins).

use crate::ExecError;
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (including the primary one).
    pub groups: Vec<u32>,
    pub home: Option<String>,
}

/// The file at `rel` as the merged rootfs would show it: the topmost layer
/// that has it, unless a higher layer whited it out.
pub(crate) fn read_merged(lowers_top_first: &[PathBuf], rel: &str) -> Option<String> {
    for dir in lowers_top_first {
        let p = dir.join(rel);
        match fs::symlink_metadata(&p) {
            Ok(m) => {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                if m.file_type().is_char_device() && m.rdev() == 0 {
                    return None; // whiteout
                }
                return fs::read_to_string(&p).ok();
            }
            Err(_) => continue,
        }
    }
    None
}

fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// Resolves `spec` (empty = root).
pub fn resolve(spec: &str, lowers_top_first: &[PathBuf]) -> Result<ResolvedUser, ExecError> {
    let passwd = read_merged(lowers_top_first, "etc/passwd").unwrap_or_default();
    let group = read_merged(lowers_top_first, "etc/group").unwrap_or_default();
    resolve_in(spec, &passwd, &group)
}

/// Resolves `spec` (empty = root) with these passwd and group files.
pub(crate) fn resolve_in(spec: &str, passwd: &str, group: &str) -> Result<ResolvedUser, ExecError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let by_name = entries(passwd).find(|f| f.len() >= 4 && f[0] == user_part);
    let by_uid = || entries(passwd).find(|f| f.len() >= 4 && f[2] == user_part);
    let (uid, mut gid, name, home) = match (by_name, user_part.parse::<u32>()) {
        (Some(f), _) => (
            parse_id(f[2])?,
            parse_id(f[3])?,
            Some(f[0].to_string()),
            f.get(5).map(|h| h.to_string()),
        ),
        (None, Ok(uid)) => match by_uid() {
            Some(f) => (
                uid,
                parse_id(f[3])?,
                Some(f[0].to_string()),
                f.get(5).map(|h| h.to_string()),
            ),
            None => (uid, 0, None, None),
        },
        (None, Err(_)) => {
            return Err(ExecError::User(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group_part {
        gid = match entries(group).find(|f| f.len() >= 3 && f[0] == g) {
            Some(f) => parse_id(f[2])?,
            None => g.parse().map_err(|_| {
                ExecError::User(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
    }
    let mut groups = vec![gid];
    // `USER name` gets the name's groups from /etc/group; `USER
    // name:group` gets exactly that group (as BuildKit and docker do).
    if let (Some(name), None) = (&name, group_part) {
        for f in entries(group).filter(|f| f.len() >= 4) {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        groups,
        home,
    })
}

/// Adds `extra` (`--group-add`: names in `group`, or numbers) to the
/// user's supplementary groups.
pub(crate) fn add_groups(
    user: &mut ResolvedUser,
    extra: &[String],
    group: &str,
) -> Result<(), ExecError> {
    for g in extra {
        let gid = match entries(group).find(|f| f.len() >= 3 && f[0] == g.as_str()) {
            Some(f) => parse_id(f[2])?,
            None => g.parse().map_err(|_| {
                ExecError::User(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        if !user.groups.contains(&gid) {
            user.groups.push(gid);
        }
    }
    Ok(())
}

fn parse_id(s: &str) -> Result<u32, ExecError> {
    s.parse()
        .map_err(|_| ExecError::User(format!("invalid id {s:?} in passwd/group file")))
}

/// Whether `rel` exists in any lower layer (for mountpoint cleanup).
pub(crate) fn exists_in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .any(|d| fs::symlink_metadata(d.join(rel)).is_ok())
}
