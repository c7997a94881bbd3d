//! COPY/ADD/WORKDIR on filesystem views, with docker's semantics.
//!
//! Every path is resolved with `openat2(RESOLVE_IN_ROOT)` against the root
//! descriptor of a view, and every entry is made with a `*at` call on its
//! parent's descriptor and a plain name: a symlink in the image or in the
//! context (`/bin -> usr/bin`, `etc -> /etc`) resolves inside its own tree,
//! never on the host.

use kiln_solver::Chmod;

mod links;
mod matching;

use links::{link_to_copied, remember_copied, CopiedLinks};
pub use matching::{expand_source, Filter};
use rustix::fs::{
    openat2, AtFlags, Dir, FileType, Mode, OFlags, ResolveFlags, Stat, Timespec, Timestamps,
};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Why a file op failed: the path and what happened, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FileOpError(pub String);

impl From<String> for FileOpError {
    fn from(s: String) -> Self {
        FileOpError(s)
    }
}

impl From<&str> for FileOpError {
    fn from(s: &str) -> Self {
        FileOpError(s.to_string())
    }
}

pub type OpResult<T> = Result<T, FileOpError>;

fn errno(what: impl std::fmt::Display) -> impl FnOnce(Errno) -> FileOpError {
    move |e| FileOpError(format!("{what}: {}", io::Error::from(e)))
}

/// A slash path's normal components (`.`/empty dropped, `..` resolved
/// lexically, never above the root), by the frontend's path rules.
pub fn components(p: &str) -> Vec<String> {
    kiln_frontend_dockerfile::path::components(p)
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn rel_of(parts: &[String]) -> String {
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// Opens `rel` inside `root` (symlinks followed, inside the root).
fn open_in(root: BorrowedFd<'_>, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    openat2(
        root,
        if rel.is_empty() { "." } else { rel },
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
}

fn open_dir_in(root: BorrowedFd<'_>, rel: &str) -> Result<OwnedFd, Errno> {
    open_in(root, rel, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// Ownership and mode rules for the entries a copy makes.
#[derive(Debug, Clone, Copy)]
pub struct Attrs<'a> {
    /// `--chown` (uid, gid); else `keep_owner` decides.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`, for files and directories alike (symbolic modes apply
    /// to each entry's own mode).
    pub chmod: Option<&'a Chmod>,
    /// Keep the source's owner (COPY --from); context files become 0:0.
    pub keep_owner: bool,
}

impl Attrs<'_> {
    fn owner(&self, st: &Stat) -> (u32, u32) {
        match self.chown {
            Some(o) => o,
            None if self.keep_owner => (st.st_uid, st.st_gid),
            None => (0, 0),
        }
    }
    fn mode(&self, st: &Stat) -> u32 {
        let own = st.st_mode & 0o7777;
        self.chmod.map_or(own, |c| c.apply(own, is_dir(st)))
    }
    /// Owner of directories the copy has to create on the way.
    fn new_dir_owner(&self) -> (u32, u32) {
        self.chown.unwrap_or((0, 0))
    }
}

fn set_owner(dir: BorrowedFd<'_>, name: &OsStr, (uid, gid): (u32, u32)) -> OpResult<()> {
    rustix::fs::chownat(
        dir,
        name,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(errno(format!("chown {}", name.to_string_lossy())))
}

fn set_times(dir: BorrowedFd<'_>, name: &OsStr, st: &Stat) -> OpResult<()> {
    let t = Timespec {
        tv_sec: st.st_mtime as _,
        tv_nsec: st.st_mtime_nsec as _,
    };
    rustix::fs::utimensat(
        dir,
        name,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(errno(format!("times of {}", name.to_string_lossy())))
}

/// Removes `name` in `dir`, recursively for directories.
fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> OpResult<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(errno(name.to_string_lossy())(e)),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let sub = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno(name.to_string_lossy()))?;
        for entry in list(sub.as_fd())? {
            remove_all_at(sub.as_fd(), &entry)?;
        }
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())
    }
    .map_err(errno(format!("removing {}", name.to_string_lossy())))
}

/// Entry names of a directory, sorted (deterministic order).
fn list(dir: BorrowedFd<'_>) -> OpResult<Vec<OsString>> {
    let mut d = Dir::read_from(dir).map_err(errno("reading a directory"))?;
    let mut names = Vec::new();
    while let Some(entry) = d.read() {
        let entry = entry.map_err(errno("reading a directory"))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsString::from_vec(name.to_vec()));
        }
    }
    names.sort();
    Ok(names)
}

/// `mkdir -p` inside the view; returns the directory, opened. A
/// component that is a symlink to a missing directory is followed (inside
/// the root, as BuildKit's MkdirAll does) and its target made.
pub fn ensure_dir(root: BorrowedFd<'_>, parts: &[String], attrs: &Attrs) -> OpResult<OwnedFd> {
    let mut fd = open_dir_in(root, ".").map_err(errno("opening /"))?;
    let mut done: Vec<String> = Vec::new();
    let mut todo: std::collections::VecDeque<String> = parts.iter().cloned().collect();
    let mut links = 0;
    while let Some(part) = todo.pop_front() {
        let mut here = done.clone();
        here.push(part.clone());
        let rel = rel_of(&here);
        fd = match open_dir_in(root, &rel) {
            Ok(d) => d,
            Err(Errno::NOENT) => {
                if let Ok(target) = rustix::fs::readlinkat(fd.as_fd(), part.as_str(), Vec::new()) {
                    links += 1;
                    if links > 40 {
                        return Err(FileOpError(format!(
                            "/{rel}: too many levels of symbolic links"
                        )));
                    }
                    // Restart from the root along the link's target.
                    let target = target.to_string_lossy().into_owned();
                    let joined = if target.starts_with('/') {
                        target
                    } else {
                        format!("{}/{target}", done.join("/"))
                    };
                    for c in components(&joined).into_iter().rev() {
                        todo.push_front(c);
                    }
                    done.clear();
                    fd = open_dir_in(root, ".").map_err(errno("opening /"))?;
                    continue;
                }
                let mode = Chmod::new_dir_mode(attrs.chmod);
                match rustix::fs::mkdirat(fd.as_fd(), part.as_str(), Mode::from_raw_mode(mode)) {
                    Ok(()) => {
                        set_owner(fd.as_fd(), OsStr::new(&part), attrs.new_dir_owner())?;
                        // mkdirat's mode passes through the umask.
                        chmod(fd.as_fd(), OsStr::new(&part), mode)?;
                    }
                    Err(Errno::EXIST) => {}
                    Err(e) => return Err(errno(format!("mkdir /{rel}"))(e)),
                }
                open_dir_in(root, &rel).map_err(errno(format!("/{rel}")))?
            }
            Err(Errno::NOTDIR) => {
                return Err(FileOpError(format!("/{rel} exists and is not a directory")));
            }
            Err(e) => return Err(errno(format!("/{rel}"))(e)),
        };
        done = here;
    }
    Ok(fd)
}

/// What a source path names in its tree.
fn stat_in(root: BorrowedFd<'_>, rel: &str) -> Result<Stat, Errno> {
    let fd = open_in(root, rel, OFlags::PATH)?;
    rustix::fs::fstat(&fd)
}

fn is_dir(st: &Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// Copies the entry `name` of `src_dir` to `dst_name` in `dst_dir`.
/// `rel` is the entry's path from the source root (for the filters).
fn copy_entry(
    src_dir: BorrowedFd<'_>,
    name: &OsStr,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
    rel: &str,
    attrs: &Attrs,
    filter: &Filter<'_>,
) -> OpResult<()> {
    let st = rustix::fs::statat(src_dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(errno(format!("/{rel}")))?;
    let existing = rustix::fs::statat(dst_dir, dst_name, AtFlags::SYMLINK_NOFOLLOW).ok();
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            match existing {
                Some(e) if is_dir(&e) => {}
                Some(_) => {
                    remove_all_at(dst_dir, dst_name)?;
                    mkdir(dst_dir, dst_name)?;
                }
                None => mkdir(dst_dir, dst_name)?,
            }
            let src = rustix::fs::openat(
                src_dir,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno(format!("/{rel}")))?;
            let dst = rustix::fs::openat(
                dst_dir,
                dst_name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno(format!("{}", dst_name.to_string_lossy())))?;
            copy_children(src.as_fd(), dst.as_fd(), rel, attrs, filter)?;
            set_owner(dst_dir, dst_name, attrs.owner(&st))?;
            chmod(dst_dir, dst_name, attrs.mode(&st))?;
            set_times(dst_dir, dst_name, &st)
        }
        FileType::RegularFile => {
            let src = rustix::fs::openat(
                src_dir,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno(format!("/{rel}")))?;
            if st.st_nlink > 1 && link_to_copied(&st, existing.is_some(), dst_dir, dst_name)? {
                return Ok(());
            }
            write_file_from(src, &st, existing.is_some(), dst_dir, dst_name, rel, attrs)?;
            if st.st_nlink > 1 {
                remember_copied(&st, dst_dir, dst_name)?;
            }
            Ok(())
        }
        FileType::Symlink => {
            if existing.is_some() {
                remove_all_at(dst_dir, dst_name)?;
            }
            let target = rustix::fs::readlinkat(src_dir, name, Vec::new())
                .map_err(errno(format!("/{rel}")))?;
            rustix::fs::symlinkat(target.as_c_str(), dst_dir, dst_name)
                .map_err(errno(format!("symlink {}", dst_name.to_string_lossy())))?;
            set_owner(dst_dir, dst_name, attrs.owner(&st))?;
            set_times(dst_dir, dst_name, &st)
        }
        FileType::Fifo => {
            if existing.is_some() {
                remove_all_at(dst_dir, dst_name)?;
            }
            rustix::fs::mknodat(
                dst_dir,
                dst_name,
                FileType::Fifo,
                Mode::from_raw_mode(attrs.mode(&st)),
                0,
            )
            .map_err(errno(format!("mkfifo {}", dst_name.to_string_lossy())))?;
            set_owner(dst_dir, dst_name, attrs.owner(&st))
        }
        // A socket in the build context arrives as an empty file (as
        // BuildKit's context transfer sends it); one in a stage is made
        // again.
        FileType::Socket => {
            if existing.is_some() {
                remove_all_at(dst_dir, dst_name)?;
            }
            if attrs.keep_owner {
                rustix::fs::mknodat(
                    dst_dir,
                    dst_name,
                    FileType::Socket,
                    Mode::from_raw_mode(attrs.mode(&st)),
                    0,
                )
                .map_err(errno(format!("mknod {}", dst_name.to_string_lossy())))?;
            } else {
                let fd = rustix::fs::openat(
                    dst_dir,
                    dst_name,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(errno(format!("/{rel}")))?;
                drop(fd);
                chmod(dst_dir, dst_name, attrs.mode(&st))?;
            }
            set_owner(dst_dir, dst_name, attrs.owner(&st))?;
            set_times(dst_dir, dst_name, &st)
        }
        // Device nodes are not build inputs.
        _ => Ok(()),
    }
}

/// A regular file's content and attributes to `dst_name` in `dst_dir`.
fn write_file_from(
    src: OwnedFd,
    st: &Stat,
    replace: bool,
    dst_dir: BorrowedFd<'_>,
    dst_name: &OsStr,
    rel: &str,
    attrs: &Attrs,
) -> OpResult<()> {
    if replace {
        remove_all_at(dst_dir, dst_name)?;
    }
    let dst = rustix::fs::openat(
        dst_dir,
        dst_name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(errno(format!("creating {}", dst_name.to_string_lossy())))?;
    let (mut r, mut w) = (File::from(src), File::from(dst));
    io::copy(&mut r, &mut w).map_err(|e| format!("copying /{rel}: {e}"))?;
    drop(w);
    set_owner(dst_dir, dst_name, attrs.owner(st))?;
    chmod(dst_dir, dst_name, attrs.mode(st))?;
    set_times(dst_dir, dst_name, st)
}

fn copy_children(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    rel: &str,
    attrs: &Attrs,
    filter: &Filter<'_>,
) -> OpResult<()> {
    for child in list(src)? {
        let child_rel = if rel.is_empty() {
            child.to_string_lossy().into_owned()
        } else {
            format!("{rel}/{}", child.to_string_lossy())
        };
        if filter.excluded(&child_rel) {
            continue;
        }
        copy_entry(src, &child, dst, &child, &child_rel, attrs, filter)?;
    }
    Ok(())
}

fn mkdir(dir: BorrowedFd<'_>, name: &OsStr) -> OpResult<()> {
    rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755))
        .map_err(errno(format!("mkdir {}", name.to_string_lossy())))
}

fn chmod(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> OpResult<()> {
    rustix::fs::chmodat(dir, name, Mode::from_raw_mode(mode), AtFlags::empty())
        .map_err(errno(format!("chmod {}", name.to_string_lossy())))
}

/// One COPY/ADD: `paths` from the source tree into `dest` of the target.
pub struct CopySpec<'a> {
    pub paths: &'a [String],
    /// Absolute; a trailing `/` means "a directory".
    pub dest: &'a str,
    pub attrs: Attrs<'a>,
    pub parents: bool,
    /// ADD: unpack local tar archives.
    pub unpack: bool,
}

pub fn copy(
    src_root: BorrowedFd<'_>,
    dst_root: BorrowedFd<'_>,
    spec: &CopySpec<'_>,
    filter: &Filter<'_>,
) -> OpResult<()> {
    let _links = CopiedLinks::scope();
    let matches = matching::sources(src_root, spec, filter)?;
    let dest_parts = components(spec.dest);
    if matches.is_empty() {
        // Nothing matched: the destination directory is still made, as
        // BuildKit's copier makes it before matching.
        let dir = if spec.dest.ends_with('/') {
            &dest_parts[..]
        } else {
            &dest_parts[..dest_parts.len().saturating_sub(1)]
        };
        ensure_dir(dst_root, dir, &spec.attrs)?;
        return Ok(());
    }
    // A file source goes *into* the destination when it names a directory
    // (trailing `/`, several sources, the root, or an existing directory);
    // otherwise the destination is the new file's path.
    let into_dir = spec.dest.ends_with('/')
        || matches.len() > 1
        || spec.paths.len() > 1
        || dest_parts.is_empty()
        || open_dir_in(dst_root, &rel_of(&dest_parts)).is_ok();
    for (m, kept_from) in matches {
        let st = stat_in(src_root, &m).map_err(errno(format!("/{m}")))?;
        let m_parts = components(&m);
        if is_dir(&st) {
            let mut target = dest_parts.clone();
            if spec.parents {
                target.extend(m_parts.iter().skip(kept_from).cloned());
            }
            let dst = ensure_dir(dst_root, &target, &spec.attrs)?;
            let src = open_dir_in(src_root, &m).map_err(errno(format!("/{m}")))?;
            copy_children(src.as_fd(), dst.as_fd(), &m, &spec.attrs, &filter.based(&m))?;
            continue;
        }
        let Some((name, m_parent)) = m_parts.split_last() else {
            return Err("cannot copy the root as a file".into());
        };
        if spec.unpack
            && FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
            && unpack_archive(src_root, dst_root, &m, &dest_parts, &spec.attrs)?
        {
            continue;
        }
        let (dir_parts, dst_name): (Vec<String>, String) = if into_dir {
            let mut d = dest_parts.clone();
            if spec.parents {
                d.extend(m_parent.iter().skip(kept_from).cloned());
            }
            (d, name.clone())
        } else {
            let mut d = dest_parts.clone();
            let last = d.pop().expect("non-empty");
            (d, last)
        };
        let dst = ensure_dir(dst_root, &dir_parts, &spec.attrs)?;
        // A top-level symlink is followed (inside the source tree) and
        // its target copied under the source's name, as docker does;
        // symlinks further down are copied as symlinks.
        let src_parent_rel = rel_of(m_parent);
        let src_parent = open_dir_in(src_root, &src_parent_rel).map_err(errno(format!("/{m}")))?;
        let lst = rustix::fs::statat(src_parent.as_fd(), name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(errno(format!("/{m}")))?;
        let existing =
            rustix::fs::statat(dst.as_fd(), dst_name.as_str(), AtFlags::SYMLINK_NOFOLLOW).is_ok();
        if FileType::from_raw_mode(lst.st_mode) == FileType::Symlink {
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                return Err(FileOpError(format!(
                    "/{m}: a symlink to something that is not a file"
                )));
            }
            let src = open_in(src_root, &m, OFlags::RDONLY).map_err(errno(format!("/{m}")))?;
            write_file_from(
                src,
                &st,
                existing,
                dst.as_fd(),
                OsStr::new(&dst_name),
                &m,
                &spec.attrs,
            )?;
        } else {
            copy_entry(
                src_parent.as_fd(),
                OsStr::new(&name),
                dst.as_fd(),
                OsStr::new(&dst_name),
                &m,
                &spec.attrs,
                &filter.based(&m_parent.join("/")),
            )?;
        }
    }
    Ok(())
}

/// ADD of a local archive: unpacked under `dest_parts` with the store's
/// extractor (the one layers are applied with); false when `m` is not a
/// tar archive (it is then copied as a file).
fn unpack_archive(
    src_root: BorrowedFd<'_>,
    dst_root: BorrowedFd<'_>,
    m: &str,
    dest_parts: &[String],
    attrs: &Attrs,
) -> OpResult<bool> {
    let mut f = File::from(open_in(src_root, m, OFlags::RDONLY).map_err(errno(format!("/{m}")))?);
    if !is_archive(&mut f).unwrap_or(false) {
        return Ok(false);
    }
    ensure_dir(dst_root, dest_parts, attrs)?;
    io::Seek::rewind(&mut f).map_err(|e| format!("/{m}: {e}"))?;
    let opts = kiln_store::apply::ExtractOptions {
        whiteouts: false,
        under: rel_of(dest_parts),
        owner: attrs.chown,
        // An octal mode applies to every unpacked entry; a symbolic one
        // to none (BuildKit applies no --chmod when unpacking at all).
        mode: match attrs.chmod {
            Some(Chmod::Octal(bits)) => Some(*bits),
            _ => None,
        },
    };
    let applied = kiln_store::apply::extract(f, dst_root, &opts)
        .map_err(|e| format!("unpacking /{m}: {e}"))?;
    kiln_store::warn_skipped_devices(&format!("ADD /{m}"), applied.skipped_devices);
    Ok(true)
}

/// Whether a file is a tar archive (plain or compressed).
fn is_archive(f: &mut File) -> io::Result<bool> {
    let mut r = kiln_store::layer::decompress(&mut *f)?;
    let mut header = [0u8; 512];
    let mut n = 0;
    while n < 512 {
        match r.read(&mut header[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n == 512 && tar_checksum_ok(&header))
}

/// Whether a 512-byte block is a tar header: its checksum field (octal,
/// bytes 148..156) is the sum of the block with that field as spaces. As
/// Go's archive/tar (what docker's unpacker uses) it takes v7, ustar and
/// GNU headers alike, not just ones with the `ustar` magic.
fn tar_checksum_ok(header: &[u8; 512]) -> bool {
    let field = &header[148..156];
    let text: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| c.is_digit(8))
        .collect();
    let Ok(want) = u32::from_str_radix(&text, 8) else {
        return false;
    };
    let sum: u32 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u32::from(b' ')
            } else {
                u32::from(b)
            }
        })
        .sum();
    // An all-zero block (end of archive) is not a header.
    want == sum && header.iter().any(|&b| b != 0)
}

/// Everything under `selector` in `src_root` into the root of
/// `dst_root`, modes and links kept (owners too with `keep_owner`, else
/// the caller's), nothing filtered (`-o type=local`, a cache mount's
/// `from=` seed).
pub fn copy_tree(
    src_root: BorrowedFd<'_>,
    selector: &str,
    dst_root: BorrowedFd<'_>,
    keep_owner: bool,
) -> OpResult<()> {
    let paths = [selector.to_string()];
    let spec = CopySpec {
        paths: &paths,
        dest: "/",
        attrs: Attrs {
            chown: None,
            chmod: None,
            keep_owner,
        },
        parents: false,
        unpack: false,
    };
    let filter = Filter {
        ignore: None,
        exclude: None,
        base: String::new(),
    };
    copy(src_root, dst_root, &spec, &filter)
}

/// `WORKDIR`: the directory and its missing parents.
pub fn mkdir_p(root: BorrowedFd<'_>, path: &str, mode: u32, owner: (u32, u32)) -> OpResult<()> {
    let attrs = Attrs {
        chown: Some(owner),
        chmod: None,
        keep_owner: false,
    };
    let parts = components(path);
    if parts.is_empty() {
        return Ok(());
    }
    if open_dir_in(root, &rel_of(&parts)).is_ok() {
        return Ok(());
    }
    let (last, parent) = parts.split_last().expect("non-empty");
    let dir = ensure_dir(root, parent, &attrs)?;
    mkdir(dir.as_fd(), OsStr::new(last))?;
    set_owner(dir.as_fd(), OsStr::new(last), owner)?;
    chmod(dir.as_fd(), OsStr::new(last), mode)
}

/// A file with `data` at `path` (heredoc sources).
pub fn mkfile(root: BorrowedFd<'_>, path: &str, mode: u32, data: &[u8]) -> OpResult<()> {
    let parts = components(path);
    let (name, parent) = parts.split_last().ok_or("mkfile: empty path")?;
    let attrs = Attrs {
        chown: None,
        chmod: None,
        keep_owner: false,
    };
    let dir = ensure_dir(root, parent, &attrs)?;
    let _ = remove_all_at(dir.as_fd(), OsStr::new(name));
    let fd = rustix::fs::openat(
        dir.as_fd(),
        name.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(errno(path))?;
    io::Write::write_all(&mut File::from(fd), data).map_err(|e| format!("{path}: {e}"))?;
    chmod(dir.as_fd(), OsStr::new(name), mode)
}

/// A path inside a view as a host path usable for bind mounts while the
/// returned descriptor is open (`/proc/self/fd/N`).
pub fn pin_path(root: BorrowedFd<'_>, rel: &str) -> OpResult<(OwnedFd, PathBuf)> {
    let parts = components(rel);
    let fd = open_in(root, &rel_of(&parts), OFlags::PATH)
        .map_err(errno(format!("/{}", parts.join("/"))))?;
    let path = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&fd)
    ));
    Ok((fd, path))
}
