//! A container's filesystem: what it changed (`diff`), all of it as one
//! tar (`export`), files copied in and out (`cp`), its changes as a new
//! image (`commit`), and a volume's first filling from the image.
//!
//! Reads go through a read-only overlay of the image's snapshots with
//! the container's upper directory as the top layer, held by descriptor
//! (nothing appears in a mount table). Writes into a running container
//! go through its own root (`/proc/PID/root`); into a stopped one, through
//! a writable view on its upper directory. Every path in the container is
//! resolved inside its root (`RESOLVE_IN_ROOT`), so a symlink the
//! container made never points a copy at the host.

use crate::containers::Container;
use crate::{io_at, Result, RuntimeError};
use kiln_executor::view::{self, View};
use kiln_store::Store;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Paths the executor puts in every container (mount points of its
/// generated files and kernel filesystems), left out of `diff` as
/// docker leaves them out.
const GENERATED: &[&str] = &[
    "/etc/hostname",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/dev",
    "/proc",
    "/sys",
];

/// How a path changed (`kiln diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Changed,
    Deleted,
}

impl Change {
    pub fn letter(self) -> char {
        match self {
            Change::Added => 'A',
            Change::Changed => 'C',
            Change::Deleted => 'D',
        }
    }
}

/// The container's image snapshots, base first.
fn lowers(store: &Store, c: &Container) -> Result<Vec<PathBuf>> {
    let image = store.resolve(&c.config.image_id)?;
    Ok(store.snapshots_for(&image)?)
}

/// The container's whole filesystem, read-only.
pub fn view_of(store: &Store, c: &Container) -> Result<View> {
    let mut layers = lowers(store, c)?;
    let upper = c.upper();
    if upper.is_dir() {
        layers.push(upper);
    }
    view::readonly(&layers, &c.dir.join("empty")).map_err(io_at(&c.dir))
}

/// What the container added, changed and deleted, by path, sorted.
pub fn diff(store: &Store, c: &Container) -> Result<Vec<(Change, String)>> {
    let lowers = lowers(store, c)?;
    let upper = c.upper();
    let mut out = Vec::new();
    if upper.is_dir() {
        walk_upper(&upper, &upper, &lowers, &mut out)?;
    }
    out.retain(|(_, p)| {
        !GENERATED
            .iter()
            .any(|g| p == g || p.starts_with(&format!("{g}/")))
    });
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn walk_upper(
    dir: &Path,
    upper: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<(Change, String)>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir).map_err(io_at(dir))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path.strip_prefix(upper).unwrap_or(&path);
        let shown = format!("/{}", rel.display());
        let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
        let whiteout = meta.file_type().is_char_device() && meta.rdev() == 0;
        let in_lowers = lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(rel)).is_ok());
        let change = match (whiteout, in_lowers) {
            (true, _) => Change::Deleted,
            (false, true) => Change::Changed,
            (false, false) => Change::Added,
        };
        out.push((change, shown));
        if meta.is_dir() && !whiteout {
            walk_upper(&path, upper, lowers, out)?;
        }
    }
    Ok(())
}

/// A path through a view's root descriptor (`/proc/self/fd/N/...`), to
/// walk with functions that never follow symlinks.
fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `kiln export`: the container's filesystem as one flat tar.
pub fn export(store: &Store, c: &Container, out: impl Write) -> Result<()> {
    let v = view_of(store, c)?;
    let root = fd_path(v.root());
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    append_tree(&mut tar, &root, Path::new(""))?;
    tar.into_inner()
        .map_err(io_at(&root))?
        .flush()
        .map_err(io_at(&root))?;
    Ok(())
}

/// Appends everything under `dir` with names starting at `name`.
fn append_tree<W: Write>(tar: &mut tar::Builder<W>, dir: &Path, name: &Path) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir).map_err(io_at(dir))?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = name.join(e.file_name());
        let meta = fs::symlink_metadata(&path).map_err(io_at(&path))?;
        if meta.file_type().is_socket() {
            continue; // tar has no sockets
        }
        tar.append_path_with_name(&path, &rel)
            .map_err(io_at(&path))?;
        if meta.is_dir() {
            append_tree(tar, &path, &rel)?;
        }
    }
    Ok(())
}

/// Opens `rel` inside `root` (symlinks resolved in the root).
fn open_in(root: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    Ok(rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?)
}

/// Fills a new volume from what the image has at `target` (nothing when
/// it has nothing there).
pub fn copy_up(lowers: &[PathBuf], target: &str, dest: &Path) -> Result<()> {
    if lowers.is_empty() {
        return Ok(());
    }
    let scratch = dest.with_extension("empty");
    let v = view::readonly(lowers, &scratch).map_err(io_at(dest))?;
    let _ = fs::remove_dir(&scratch);
    let Ok(dir) = open_in(v.root(), target, OFlags::RDONLY | OFlags::DIRECTORY) else {
        return Ok(());
    };
    copy_tree(&fd_path(dir.as_fd()), dest)
}

/// Copies the contents of `src` into the existing directory `dst`,
/// keeping modes, owners and symlinks (never following them).
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    for e in fs::read_dir(src).map_err(io_at(src))?.flatten() {
        copy_entry(&e.path(), &dst.join(e.file_name()))?;
    }
    Ok(())
}

/// Creates directory `dir`, unless one is there.
fn make_dir(dir: &Path) -> Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(io_at(dir)(e)),
    }
}

fn copy_entry(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(src).map_err(io_at(src))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        make_dir(dst)?;
        copy_tree(src, dst)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_at(src))?;
        let _ = fs::remove_file(dst);
        std::os::unix::fs::symlink(target, dst).map_err(io_at(dst))?;
    } else if ft.is_file() {
        fs::copy(src, dst).map_err(io_at(dst))?;
    } else {
        return Ok(()); // devices, fifos, sockets: not copied
    }
    let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
    if !ft.is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_at(dst))?;
    }
    Ok(())
}

/// `kiln cp CONTAINER:SRC DEST`: a file or directory from the container
/// to the host (`dest` an existing directory receives it by name).
pub fn copy_out(store: &Store, c: &Container, src: &str, dest: &Path) -> Result<()> {
    let v = view_of(store, c)?;
    let fd = open_in(v.root(), src, OFlags::PATH | OFlags::NOFOLLOW).map_err(|e| {
        RuntimeError::Invalid(format!(
            "could not find {src} in container {}: {e}",
            c.config.name
        ))
    })?;
    let from = fd_path(fd.as_fd());
    let name = Path::new(src.trim_end_matches('/'))
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let to = if dest.is_dir() {
        dest.join(name)
    } else {
        dest.to_path_buf()
    };
    // The descriptor's own type: its /proc/self/fd path is a magic link.
    let stat = rustix::fs::fstat(&fd).map_err(|e| io_at(&to)(e.into()))?;
    let kind = rustix::fs::FileType::from_raw_mode(stat.st_mode);
    match kind {
        rustix::fs::FileType::Directory => {
            make_dir(&to)?;
            copy_tree(&from, &to)?;
        }
        rustix::fs::FileType::Symlink => {
            let target =
                rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(|e| io_at(&to)(e.into()))?;
            let _ = fs::remove_file(&to);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target.as_bytes()), &to)
                .map_err(io_at(&to))?;
            return Ok(());
        }
        rustix::fs::FileType::RegularFile => {
            fs::copy(&from, &to).map_err(io_at(&to))?;
        }
        _ => {
            return Err(RuntimeError::Invalid(format!(
                "{src} in container {}: not a file, directory or symlink",
                c.config.name
            )))
        }
    }
    let _ = std::os::unix::fs::lchown(&to, Some(stat.st_uid), Some(stat.st_gid));
    fs::set_permissions(&to, fs::Permissions::from_mode(stat.st_mode & 0o7777)).map_err(io_at(&to))
}

/// `kiln cp SRC CONTAINER:DEST`: a host file or directory into the
/// container: through its root while it runs, else into its upper
/// directory through a writable view.
pub fn copy_in(store: &Store, c: &Container, src: &Path, dest: &str) -> Result<()> {
    let running_root;
    let stopped_view;
    let root: BorrowedFd<'_> = match c.state().live_pid() {
        Some(pid) => {
            running_root = rustix::fs::open(
                format!("/proc/{pid}/root"),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_at(&c.dir)(e.into()))?;
            running_root.as_fd()
        }
        None => {
            let lowers = lowers(store, c)?;
            let scratch = c.dir.join("cp");
            stopped_view = view::writable(&lowers, &c.upper(), &scratch).map_err(io_at(&c.dir))?;
            stopped_view.root()
        }
    };
    let meta = fs::symlink_metadata(src).map_err(io_at(src))?;
    // DEST an existing directory receives SRC by name; else SRC becomes DEST.
    let dest_is_dir = open_in(root, dest, OFlags::RDONLY | OFlags::DIRECTORY).is_ok();
    let target = if dest_is_dir {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}/{name}", dest.trim_end_matches('/'))
    } else {
        dest.to_string()
    };
    let result = copy_in_entry(root, src, &target, &meta);
    let _ = fs::remove_dir_all(c.dir.join("cp"));
    result
}

/// Creates `rel` in the container from host path `src`, every component
/// resolved inside the root: the parent directory is opened in the root,
/// and the new entry is made relative to it.
fn copy_in_entry(root: BorrowedFd<'_>, src: &Path, rel: &str, meta: &fs::Metadata) -> Result<()> {
    let rel = rel.trim_end_matches('/');
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    if name.is_empty() || name == "." || name == ".." {
        return Err(RuntimeError::Invalid(format!("cannot copy to {rel:?}")));
    }
    let dir = open_in(root, parent, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| RuntimeError::Invalid(format!("{parent}: {e} (in the container)")))?;
    let ft = meta.file_type();
    let mode = Mode::from_raw_mode(meta.mode() & 0o7777);
    if ft.is_dir() {
        match rustix::fs::mkdirat(&dir, name, mode) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_at(src)(e.into())),
        }
        for e in fs::read_dir(src).map_err(io_at(src))?.flatten() {
            let m = fs::symlink_metadata(e.path()).map_err(io_at(&e.path()))?;
            let child = format!("{rel}/{}", e.file_name().to_string_lossy());
            copy_in_entry(root, &e.path(), &child, &m)?;
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_at(src))?;
        let _ = rustix::fs::unlinkat(&dir, name, rustix::fs::AtFlags::empty());
        rustix::fs::symlinkat(&target, &dir, name).map_err(|e| io_at(src)(e.into()))?;
    } else if ft.is_file() {
        // O_NOFOLLOW: a symlink the container left at the name is refused,
        // not followed.
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            mode,
        )
        .map_err(|e| io_at(src)(e.into()))?;
        let mut from = fs::File::open(src).map_err(io_at(src))?;
        io::copy(&mut from, &mut fs::File::from(fd)).map_err(io_at(src))?;
    }
    Ok(())
}

/// `kiln commit`: the container's changes as a new image on its image,
/// with `config` as the new image config (without `rootfs`).
pub fn commit(
    store: &Store,
    c: &Container,
    config: serde_json::Value,
    names: &[kiln_store::Reference],
) -> Result<kiln_store::Image> {
    let base = store.resolve(&c.config.image_id)?;
    let upper = c.upper();
    let empty = c.dir.join("empty-upper");
    let dir = if upper.is_dir() {
        upper
    } else {
        fs::create_dir_all(&empty).map_err(io_at(&empty))?;
        empty
    };
    Ok(store.commit_container(&base, &dir, config, names)?)
}
