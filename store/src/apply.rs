//! The one safe tar extractor: layers onto snapshots ([`apply_layer`]) and
//! `ADD`'s local archives into a build step's tree ([`extract`]) go through
//! the same code, so the rules below hold for both.
//!
//! Nothing is ever written outside the root: every parent directory is
//! opened with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so
//! absolute paths and symlinks (in the archive or already in the tree)
//! resolve inside the root; `..` in a path or a hardlink target is refused;
//! a hardlink can only point at a file inside the root; every entry is made
//! with a `*at` call on its parent's handle. Device nodes are skipped when
//! `mknod` is not permitted. overlayfs's own xattrs are never applied.

use crate::digest::HashingReader;
use crate::error::{IoContext, Result, StoreError};
use crate::layer::{
    decompress, is_overlay_xattr, overlay_opaque_xattr, Applied, OPAQUE_MARKER, WHITEOUT_PREFIX,
};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How an archive lands.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Layer semantics: `.wh.NAME` becomes an overlay whiteout (a 0/0
    /// character device) and `.wh..wh..opq` an opaque directory. Off, both
    /// are ordinary files (an `ADD`ed archive is not a layer).
    pub whiteouts: bool,
    /// The directory (slash path inside the root) entries go under.
    pub under: String,
    /// Owner of every entry and of the directories made for them
    /// (`ADD --chown`); else each entry's own (when running as root).
    pub owner: Option<(u32, u32)>,
    /// Mode of every entry but symlinks (`ADD --chmod`).
    pub mode: Option<u32>,
}

/// Applies a layer tar stream (compressed or not) onto `target`, an overlay
/// snapshot directory, with layer semantics (whiteouts).
pub fn apply_layer(reader: impl Read, target: &Path) -> Result<Applied> {
    fs::create_dir_all(target).at(target)?;
    let root = rustix::fs::open(
        target,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| StoreError::Io {
        path: target.to_path_buf(),
        source: e.into(),
    })?;
    let opts = ExtractOptions {
        whiteouts: true,
        ..ExtractOptions::default()
    };
    extract(reader, root.as_fd(), &opts)
}

/// Splits a tar path into safe components: leading `/` and `.` dropped,
/// `..` refused.
fn components(raw: &[u8], what: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(unsafe_entry(raw, format!("{what} contains '..'"))),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn unsafe_entry(raw: &[u8], reason: impl Into<String>) -> StoreError {
    StoreError::UnsafeEntry {
        entry: String::from_utf8_lossy(raw).into_owned(),
        reason: reason.into(),
    }
}

/// An error on one entry, named by its path in the archive (the directory
/// it is unpacked into is the caller's business).
fn entry_err(raw: &[u8], e: impl Into<io::Error>) -> StoreError {
    unsafe_entry(raw, e.into().to_string())
}

/// The extractor's view of the root: a directory handle, whether we may
/// chown, and who owns directories it has to make.
struct Root<'a> {
    fd: BorrowedFd<'a>,
    is_root_user: bool,
    owner: Option<(u32, u32)>,
}

impl Root<'_> {
    /// Opens (creating as needed) the directory `parts` inside the root.
    /// Resolution stays inside the root whatever symlinks say.
    fn dir(&self, parts: &[Vec<u8>], raw: &[u8]) -> Result<OwnedFd> {
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = rustix::fs::openat2(self.fd, ".", flags, Mode::empty(), how)
            .map_err(|e| entry_err(raw, e))?;
        // Each prefix is resolved from the root, so a symlink on the way
        // (`var/run -> /run`) is followed inside the root, never out of it.
        let mut path: Vec<u8> = Vec::new();
        for part in parts {
            let name = OsStr::from_bytes(part);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(part);
            let prefix = OsStr::from_bytes(&path);
            match rustix::fs::openat2(self.fd, prefix, flags, Mode::empty(), how) {
                Ok(next) => fd = next,
                Err(rustix::io::Errno::NOENT) => {
                    rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755))
                        .map_err(|e| entry_err(raw, e))?;
                    if let (Some((uid, gid)), true) = (self.owner, self.is_root_user) {
                        chown(&fd, name, uid, gid).map_err(|e| entry_err(raw, e))?;
                    }
                    fd = rustix::fs::openat2(self.fd, prefix, flags, Mode::empty(), how)
                        .map_err(|e| entry_err(raw, e))?;
                }
                Err(rustix::io::Errno::NOTDIR) => {
                    return Err(unsafe_entry(
                        raw,
                        "a parent path component is not a directory",
                    ))
                }
                Err(e) => return Err(entry_err(raw, e)),
            }
        }
        Ok(fd)
    }
}

fn chown(dir: &impl AsFd, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| match e {
        // In a user namespace, an id it does not map (rootless kiln).
        rustix::io::Errno::INVAL => io::Error::other(format!(
            "owned by uid {uid} / gid {gid}, which does not exist in kiln's user namespace \
             (a rootless kiln has ids beyond 0 only from the caller's ranges in /etc/subuid \
             and /etc/subgid)"
        )),
        e => e.into(),
    })
}

/// A path usable with path-based calls (xattrs) for `name` in `dir`.
fn proc_path(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// Removes whatever is at `name` in `dir` (recursively for directories).
fn remove_existing(dir: &OwnedFd, name: &OsStr) -> io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::Directory =>
        {
            fs::remove_dir_all(proc_path(dir, name))
        }
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
    }
}

/// What one entry did (for the totals).
enum Made {
    /// File content of this many bytes.
    Content(u64),
    /// A device node we may not create.
    SkippedDevice,
    /// Something whose metadata is set (a dir, link, node).
    Entry,
    /// Nothing more to do (whiteouts, hardlinks, headers).
    Done,
}

/// Unpacks a tar stream (plain, gzip or zstd) under `root` by the rules in
/// the module docs. Returns the uncompressed stream's digest (a layer's
/// diff ID) and totals.
pub fn extract(reader: impl Read, root: BorrowedFd<'_>, opts: &ExtractOptions) -> Result<Applied> {
    let r = Root {
        fd: root,
        is_root_user: rustix::process::geteuid().is_root(),
        owner: opts.owner,
    };
    let under = components(opts.under.as_bytes(), "destination")?;
    let mut hashing = HashingReader::new(decompress(reader).map_err(bad_tar)?);
    let mut size = 0u64;
    let mut skipped_devices = 0;
    let mut dir_times: Vec<(Vec<Vec<u8>>, u64)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        for entry in archive.entries().map_err(bad_tar)? {
            let mut entry = entry.map_err(bad_tar)?;
            let raw = entry.path_bytes().into_owned();
            let mut parts = under.clone();
            parts.extend(components(&raw, "path")?);
            let Some((name, parents)) = parts.split_last() else {
                continue; // the root itself
            };
            let dir = r.dir(parents, &raw)?;
            match entry_into(&r, &dir, name, &raw, &mut entry, opts)? {
                Made::Content(n) => size += n,
                Made::SkippedDevice => {
                    skipped_devices += 1;
                    continue;
                }
                Made::Entry => {}
                Made::Done => continue,
            }
            set_metadata(&r, &dir, name, &raw, &mut entry, opts)?;
            let mtime = entry.header().mtime().unwrap_or(0);
            if entry.header().entry_type().is_dir() {
                dir_times.push((parts.clone(), mtime));
            } else {
                set_mtime(&dir, OsStr::from_bytes(name), mtime).map_err(|e| entry_err(&raw, e))?;
            }
        }
    }
    // Directory times last: creating children changed them.
    for (parts, mtime) in dir_times.iter().rev() {
        if let Some((name, parents)) = parts.split_last() {
            let dir = r.dir(parents, name)?;
            let _ = set_mtime(&dir, OsStr::from_bytes(name), *mtime);
        }
    }
    // Hash the rest of the stream (tar end blocks) so the digest is whole.
    io::copy(&mut hashing, &mut io::sink()).map_err(bad_tar)?;
    let (diff_id, _) = hashing.finish();
    Ok(Applied {
        diff_id,
        size,
        skipped_devices,
    })
}

/// An overlay whiteout entry (`.wh..wh..opq` marks its directory
/// opaque, `.wh.NAME` hides NAME): made as overlayfs's own marks.
fn whiteout(dir: &OwnedFd, name: &[u8], raw: &[u8], header: &tar::Header) -> Result<Option<Made>> {
    if name == OPAQUE_MARKER.as_bytes() {
        rustix::fs::lsetxattr(
            proc_path(dir, OsStr::new(".")),
            overlay_opaque_xattr(),
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| entry_err(raw, e))?;
        return Ok(Some(Made::Done));
    }
    let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) else {
        return Ok(None);
    };
    let hidden = OsStr::from_bytes(hidden);
    remove_existing(dir, hidden).map_err(|e| entry_err(raw, e))?;
    rustix::fs::mknodat(
        dir,
        hidden,
        rustix::fs::FileType::CharacterDevice,
        Mode::empty(),
        rustix::fs::makedev(0, 0),
    )
    .map_err(|e| entry_err(raw, e))?;
    // Keep the whiteout's time too: a layer round-trips exactly.
    set_mtime(dir, hidden, header.mtime().unwrap_or(0)).map_err(|e| entry_err(raw, e))?;
    Ok(Some(Made::Done))
}

/// A hardlink: its target is resolved inside the root, component by
/// component like every entry's path, and must already be in the archive.
fn hardlink(
    r: &Root<'_>,
    dir: &OwnedFd,
    name: &OsStr,
    raw: &[u8],
    link: &[u8],
    opts: &ExtractOptions,
) -> Result<()> {
    let mut target_parts = components(opts.under.as_bytes(), "destination")?;
    target_parts.extend(components(link, "hardlink target")?);
    let Some((tname, tparents)) = target_parts.split_last() else {
        return Err(unsafe_entry(raw, "hardlink to the root"));
    };
    let tdir = r.dir(tparents, link)?;
    rustix::fs::linkat(&tdir, OsStr::from_bytes(tname), dir, name, AtFlags::empty()).map_err(|e| {
        match e {
            rustix::io::Errno::NOENT => unsafe_entry(
                raw,
                format!(
                    "hardlink target {:?} is not in this archive",
                    String::from_utf8_lossy(link)
                ),
            ),
            e => entry_err(raw, e),
        }
    })
}

/// Makes one entry (`name` in `dir`).
fn entry_into<R: Read>(
    r: &Root<'_>,
    dir: &OwnedFd,
    name: &[u8],
    raw: &[u8],
    entry: &mut tar::Entry<'_, R>,
    opts: &ExtractOptions,
) -> Result<Made> {
    let name_os = OsStr::from_bytes(name);
    let header = entry.header().clone();
    let kind = header.entry_type();
    if opts.whiteouts {
        if let Some(made) = whiteout(dir, name, raw, &header)? {
            return Ok(made);
        }
    }
    // Replace an existing entry, except a directory by a directory.
    let existing_dir = matches!(
        rustix::fs::statat(dir, name_os, AtFlags::SYMLINK_NOFOLLOW),
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
    );
    if !(kind.is_dir() && existing_dir) && kind != tar::EntryType::XGlobalHeader {
        remove_existing(dir, name_os).map_err(|e| entry_err(raw, e))?;
    }
    let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
    Ok(match kind {
        tar::EntryType::Directory => {
            if !existing_dir {
                rustix::fs::mkdirat(dir, name_os, Mode::from_raw_mode(0o700))
                    .map_err(|e| entry_err(raw, e))?;
            }
            Made::Entry
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let fd = rustix::fs::openat(
                dir,
                name_os,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| entry_err(raw, e))?;
            let mut file = fs::File::from(fd);
            Made::Content(io::copy(entry, &mut file).map_err(bad_tar)?)
        }
        tar::EntryType::Symlink => {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(raw, "symlink without a target"))?;
            rustix::fs::symlinkat(OsStr::from_bytes(&link), dir, name_os)
                .map_err(|e| entry_err(raw, e))?;
            Made::Entry
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| unsafe_entry(raw, "hardlink without a target"))?;
            hardlink(r, dir, name_os, raw, &link, opts)?;
            Made::Done // a hardlink shares its target's metadata
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let ft = match kind {
                tar::EntryType::Char => rustix::fs::FileType::CharacterDevice,
                tar::EntryType::Block => rustix::fs::FileType::BlockDevice,
                _ => rustix::fs::FileType::Fifo,
            };
            let dev = rustix::fs::makedev(
                header.device_major().ok().flatten().unwrap_or(0),
                header.device_minor().ok().flatten().unwrap_or(0),
            );
            match rustix::fs::mknodat(dir, name_os, ft, mode, dev) {
                Ok(()) => Made::Entry,
                Err(rustix::io::Errno::PERM) if kind != tar::EntryType::Fifo => Made::SkippedDevice,
                Err(e) => return Err(entry_err(raw, e)),
            }
        }
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => Made::Done,
        other => {
            return Err(unsafe_entry(
                raw,
                format!("unsupported tar entry type {other:?}"),
            ))
        }
    })
}

/// Owner, mode and xattrs of a made entry (times are the caller's).
fn set_metadata<R: Read>(
    r: &Root<'_>,
    dir: &OwnedFd,
    name: &[u8],
    raw: &[u8],
    entry: &mut tar::Entry<'_, R>,
    opts: &ExtractOptions,
) -> Result<()> {
    let name_os = OsStr::from_bytes(name);
    let header = entry.header().clone();
    let is_symlink = header.entry_type() == tar::EntryType::Symlink;
    if r.is_root_user {
        let (uid, gid) = opts.owner.unwrap_or((
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        ));
        chown(dir, name_os, uid, gid).map_err(|e| entry_err(raw, e))?;
    }
    if !is_symlink {
        // After chown, which clears set-id bits.
        let mode = opts.mode.unwrap_or(header.mode().unwrap_or(0o644) & 0o7777);
        rustix::fs::chmodat(dir, name_os, Mode::from_raw_mode(mode), AtFlags::empty())
            .map_err(|e| entry_err(raw, e))?;
    }
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            let Ok(key) = ext.key() else { continue };
            if let Some(xname) = key.strip_prefix("SCHILY.xattr.") {
                // overlayfs reads its own xattrs off the layers (redirect,
                // metacopy, opaque, origin...): an archive must not steer
                // the overlay a container runs on. Opaque dirs come only
                // from `.wh..wh..opq`.
                if is_overlay_xattr(xname) {
                    continue;
                }
                // Best effort, as docker: unsupported namespaces are skipped.
                let _ = rustix::fs::lsetxattr(
                    proc_path(dir, name_os),
                    xname,
                    ext.value_bytes(),
                    rustix::fs::XattrFlags::empty(),
                );
            }
        }
    }
    Ok(())
}

fn set_mtime(dir: &impl AsFd, name: &OsStr, mtime: u64) -> rustix::io::Result<()> {
    let ts = rustix::fs::Timespec {
        tv_sec: mtime as i64,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        dir,
        name,
        &rustix::fs::Timestamps {
            last_access: ts,
            last_modification: ts,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

fn bad_tar(e: io::Error) -> StoreError {
    StoreError::BadLayer(format!("corrupt or truncated tar: {e}"))
}
