//! Layer tars: writing one from a directory (an overlay upper dir or a plain
//! tree) and applying one onto a snapshot directory.
//!
//! Writing is deterministic: entries sorted by name, numeric uid/gid with no
//! user names, mtimes clamped to `SOURCE_DATE_EPOCH` when set, hardlinks by
//! inode (never for overlay whiteouts, which share one inode), xattrs as PAX
//! records. The tar is hashed (diff ID), compressed and hashed again (blob
//! digest) in one streaming pass; no layer is ever held in memory.
//!
//! Applying never writes outside the target: every parent directory is
//! opened with `openat2(RESOLVE_IN_ROOT)`, so `..`, absolute paths and
//! symlinks resolve inside the snapshot, and every entry is then created
//! relative to that directory handle.

use crate::blobs::{BlobWriter, Blobs};
use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::error::{IoContext, Result, StoreError};
use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const MEDIA_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => MEDIA_TAR,
            Compression::Gzip => MEDIA_TAR_GZIP,
            Compression::Zstd => MEDIA_TAR_ZSTD,
        }
    }

    /// The compression a layer media type declares, if it is a layer type.
    pub fn from_media_type(mt: &str) -> Option<Compression> {
        match mt {
            MEDIA_TAR
            | DOCKER_LAYER_TAR
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(Compression::None),
            MEDIA_TAR_GZIP
            | DOCKER_LAYER_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => {
                Some(Compression::Gzip)
            }
            MEDIA_TAR_ZSTD | "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// Sniffs the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }
}

/// Options for writing a layer.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    pub compression: Compression,
    /// Clamp every mtime to at most this (reproducible builds).
    pub source_date_epoch: Option<u64>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Gzip,
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|v| v.trim().parse().ok()),
        }
    }
}

/// A layer stored as a blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the (compressed) blob, as manifests name it.
    pub digest: Digest,
    /// Digest of the uncompressed tar, as image configs name it.
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: &'static str,
}

enum Encoder {
    Plain(BlobWriter),
    Gzip(flate2::write::GzEncoder<BlobWriter>),
    Zstd(zstd::Encoder<'static, BlobWriter>),
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

impl Encoder {
    fn finish(self) -> io::Result<BlobWriter> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(w) => w.finish(),
            Encoder::Zstd(w) => w.finish(),
        }
    }
}

/// Writes the tree at `dir` as a layer blob in `blobs`. Overlay whiteouts
/// (0/0 character devices) become `.wh.<name>`, opaque directories get a
/// `.wh..wh..opq` entry.
pub fn write_layer(blobs: &Blobs, dir: &Path, opts: WriteOptions) -> Result<LayerBlob> {
    let blob = blobs.writer()?;
    let encoder = match opts.compression {
        Compression::None => Encoder::Plain(blob),
        Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
            blob,
            flate2::Compression::fast(),
        )),
        Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(blob, 3).at(dir)?),
    };
    // Fixed-size chunks into the compressor keep its output independent of
    // how the tar writer happens to split its writes.
    let chunked = io::BufWriter::with_capacity(64 * 1024, encoder);
    let mut tar = tar::Builder::new(HashingWriter::new(chunked));
    tar.mode(tar::HeaderMode::Complete);
    let mut state = WalkState {
        links: HashMap::new(),
        epoch: opts.source_date_epoch,
    };
    append_dir(&mut tar, dir, Path::new(""), &mut state)?;
    let hashing = tar.into_inner().at(dir)?;
    let (chunked, diff_id, _) = hashing.finish();
    let encoder = chunked.into_inner().map_err(|e| e.into_error()).at(dir)?;
    let blob = encoder.finish().at(dir)?;
    let (digest, size) = blob.commit(None, "layer")?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: opts.compression.media_type(),
    })
}

struct WalkState {
    /// (dev, inode) of regular files with several links → first path written.
    links: HashMap<(u64, u64), PathBuf>,
    epoch: Option<u64>,
}

fn sorted_entries(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .at(dir)?
        .collect::<io::Result<_>>()
        .at(dir)?;
    entries.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    Ok(entries)
}

fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(path, &mut names) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        // overlay's own bookkeeping is not part of the image.
        if is_overlay_xattr(&name) {
            continue;
        }
        let mut value = vec![0u8; 64 * 1024];
        if let Ok(len) = rustix::fs::lgetxattr(path, name.as_str(), &mut value) {
            value.truncate(len);
            out.push((name, value));
        }
    }
    out.sort();
    out
}

/// overlayfs's private xattrs: `trusted.overlay.*`, and `user.overlay.*`
/// (what it uses when mounted with `userxattr`, e.g. rootless).
fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

fn is_opaque(path: &Path) -> bool {
    let mut v = [0u8; 8];
    matches!(rustix::fs::lgetxattr(path, OVERLAY_OPAQUE_XATTR, &mut v), Ok(1) if v[0] == b'y')
}

fn base_header(meta: &fs::Metadata, epoch: Option<u64>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    let mtime = meta.mtime().max(0) as u64;
    h.set_mtime(epoch.map_or(mtime, |e| mtime.min(e)));
    h.set_size(0);
    h
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    abs: &Path,
    rel: &Path,
    st: &mut WalkState,
) -> Result<()> {
    for entry in sorted_entries(abs)? {
        let path = entry.path();
        let name = entry.file_name();
        let rel_path = rel.join(&name);
        let meta = fs::symlink_metadata(&path).at(&path)?;
        let ft = meta.file_type();
        let mut header = base_header(&meta, st.epoch);
        let pax: Vec<(String, Vec<u8>)> = xattrs(&path)
            .into_iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
            .collect();
        if !pax.is_empty() {
            tar.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .at(&path)?;
        }
        if ft.is_char_device() && meta.rdev() == 0 {
            // An overlay whiteout: the file was deleted in this layer.
            let mut wh_name = std::ffi::OsString::from(WHITEOUT_PREFIX);
            wh_name.push(&name);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, rel.join(wh_name), io::empty())
                .at(&path)?;
        } else if ft.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            let mut p = rel_path.clone().into_os_string();
            p.push("/");
            tar.append_data(&mut header, &p, io::empty()).at(&path)?;
            if is_opaque(&path) {
                let mut h = base_header(&meta, st.epoch);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                tar.append_data(&mut h, rel_path.join(OPAQUE_MARKER), io::empty())
                    .at(&path)?;
            }
            append_dir(tar, &path, &rel_path, st)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).at(&path)?;
            header.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut header, &rel_path, &target).at(&path)?;
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = st.links.get(&key) {
                    header.set_entry_type(tar::EntryType::Link);
                    tar.append_link(&mut header, &rel_path, first).at(&path)?;
                    continue;
                }
                st.links.insert(key, rel_path.clone());
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = fs::File::open(&path).at(&path)?;
            tar.append_data(&mut header, &rel_path, file).at(&path)?;
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            header.set_entry_type(if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            });
            let dev = meta.rdev();
            header.set_device_major(rustix::fs::major(dev)).at(&path)?;
            header.set_device_minor(rustix::fs::minor(dev)).at(&path)?;
            tar.append_data(&mut header, &rel_path, io::empty())
                .at(&path)?;
        }
        // Sockets are not part of images (docker skips them too).
    }
    Ok(())
}

/// What applying a layer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub diff_id: Digest,
    /// Bytes of file content written.
    pub size: u64,
    /// Device nodes skipped because we lack the privilege to create them.
    pub skipped_devices: usize,
}

/// Opens a decompressing reader over a layer stream, sniffing the format.
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let kind = Compression::detect(buf.fill_buf()?);
    Ok(match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buf)?),
    })
}

/// Splits a tar path into safe components: leading `/` and `.` dropped,
/// `..` refused.
fn components(raw: &[u8], what: &str) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(StoreError::UnsafeEntry {
                    entry: String::from_utf8_lossy(raw).into_owned(),
                    reason: format!("{what} contains '..'"),
                })
            }
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

/// The applier's view of the target: a directory handle and the root path
/// (only for messages and procfs paths).
struct Target {
    root: OwnedFd,
    is_root_user: bool,
}

impl Target {
    /// Opens (creating as needed) the directory `parts` inside the target.
    /// Resolution stays inside the target whatever symlinks say.
    fn dir(&self, parts: &[Vec<u8>], raw: &[u8]) -> Result<OwnedFd> {
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut fd = rustix::fs::openat2(&self.root, ".", flags, Mode::empty(), how)
            .map_err(|e| self.io_err(raw, e))?;
        for part in parts {
            let name = OsStr::from_bytes(part);
            match rustix::fs::openat2(&fd, name, flags, Mode::empty(), how) {
                Ok(next) => fd = next,
                Err(rustix::io::Errno::NOENT) => {
                    rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755))
                        .map_err(|e| self.io_err(raw, e))?;
                    fd = rustix::fs::openat2(&fd, name, flags, Mode::empty(), how)
                        .map_err(|e| self.io_err(raw, e))?;
                }
                Err(rustix::io::Errno::NOTDIR) => {
                    return Err(unsafe_entry(
                        raw,
                        "a parent path component is not a directory",
                    ))
                }
                Err(e) => return Err(self.io_err(raw, e)),
            }
        }
        Ok(fd)
    }

    /// An error on one entry, named by its path in the layer (the
    /// directory it is unpacked into is the caller's business).
    fn io_err(&self, raw: &[u8], e: rustix::io::Errno) -> StoreError {
        self.entry_err(raw, e.into())
    }

    fn entry_err(&self, raw: &[u8], e: io::Error) -> StoreError {
        StoreError::UnsafeEntry {
            entry: String::from_utf8_lossy(raw).into_owned(),
            reason: e.to_string(),
        }
    }
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

/// Applies a layer tar stream (compressed or not) onto `target`, an overlay
/// snapshot directory: whiteouts become overlay whiteouts (0/0 character
/// devices) and opaque markers the `trusted.overlay.opaque` xattr.
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
    let t = Target {
        root,
        is_root_user: rustix::process::geteuid().is_root(),
    };
    let mut hashing = HashingReader::new(decompress(reader).map_err(bad_tar)?);
    let mut size = 0u64;
    let mut skipped_devices = 0;
    let mut dir_times: Vec<(Vec<Vec<u8>>, u64)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let entries = archive.entries().map_err(bad_tar)?;
        for entry in entries {
            let mut entry = entry.map_err(bad_tar)?;
            let raw = entry.path_bytes().into_owned();
            let parts = components(&raw, "path")?;
            let Some((name, parents)) = parts.split_last() else {
                continue; // the root itself
            };
            let name_os = OsStr::from_bytes(name);
            let header = entry.header().clone();
            let kind = header.entry_type();
            let dir = t.dir(parents, &raw)?;

            // Whiteouts.
            if name.as_slice() == OPAQUE_MARKER.as_bytes() {
                rustix::fs::lsetxattr(
                    proc_path(&dir, OsStr::new(".")),
                    OVERLAY_OPAQUE_XATTR,
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| t.io_err(&raw, e))?;
                continue;
            }
            if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
                let hidden = OsStr::from_bytes(hidden);
                remove_existing(&dir, hidden).map_err(|e| t.entry_err(&raw, e))?;
                rustix::fs::mknodat(
                    &dir,
                    hidden,
                    rustix::fs::FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .map_err(|e| t.io_err(&raw, e))?;
                // Keep the whiteout's time too: a layer round-trips exactly.
                set_mtime(&dir, hidden, header.mtime().unwrap_or(0))
                    .map_err(|e| t.io_err(&raw, e))?;
                continue;
            }

            // Replace an existing entry, except a directory by a directory.
            let existing_dir = matches!(
                rustix::fs::statat(&dir, name_os, AtFlags::SYMLINK_NOFOLLOW),
                Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
            );
            if !(kind.is_dir() && existing_dir) {
                remove_existing(&dir, name_os).map_err(|e| t.entry_err(&raw, e))?;
            }
            let mode = Mode::from_raw_mode(header.mode().unwrap_or(0o644) & 0o7777);
            match kind {
                tar::EntryType::Directory => {
                    if !existing_dir {
                        rustix::fs::mkdirat(&dir, name_os, Mode::from_raw_mode(0o700))
                            .map_err(|e| t.io_err(&raw, e))?;
                    }
                }
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => {
                    let fd = rustix::fs::openat(
                        &dir,
                        name_os,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(|e| t.io_err(&raw, e))?;
                    let mut file = fs::File::from(fd);
                    size += io::copy(&mut entry, &mut file).map_err(bad_tar)?;
                }
                tar::EntryType::Symlink => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| unsafe_entry(&raw, "symlink without a target"))?;
                    rustix::fs::symlinkat(OsStr::from_bytes(&link), &dir, name_os)
                        .map_err(|e| t.io_err(&raw, e))?;
                }
                tar::EntryType::Link => {
                    let link = entry
                        .link_name_bytes()
                        .ok_or_else(|| unsafe_entry(&raw, "hardlink without a target"))?;
                    let target_parts = components(&link, "hardlink target")?;
                    let Some((tname, tparents)) = target_parts.split_last() else {
                        return Err(unsafe_entry(&raw, "hardlink to the root"));
                    };
                    let tdir = t.dir(tparents, &link)?;
                    rustix::fs::linkat(
                        &tdir,
                        OsStr::from_bytes(tname),
                        &dir,
                        name_os,
                        AtFlags::empty(),
                    )
                    .map_err(|e| match e {
                        rustix::io::Errno::NOENT => unsafe_entry(
                            &raw,
                            format!(
                                "hardlink target {:?} is not in this layer",
                                String::from_utf8_lossy(&link)
                            ),
                        ),
                        e => t.io_err(&raw, e),
                    })?;
                    continue; // a hardlink shares its target's metadata
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
                    match rustix::fs::mknodat(&dir, name_os, ft, mode, dev) {
                        Ok(()) => {}
                        Err(rustix::io::Errno::PERM) if kind != tar::EntryType::Fifo => {
                            skipped_devices += 1;
                            continue;
                        }
                        Err(e) => return Err(t.io_err(&raw, e)),
                    }
                }
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                other => {
                    return Err(unsafe_entry(
                        &raw,
                        format!("unsupported tar entry type {other:?}"),
                    ))
                }
            }
            let is_symlink = kind == tar::EntryType::Symlink;
            if t.is_root_user {
                let uid = header.uid().unwrap_or(0) as u32;
                let gid = header.gid().unwrap_or(0) as u32;
                rustix::fs::chownat(
                    &dir,
                    name_os,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| t.io_err(&raw, e))?;
            }
            if !is_symlink {
                // After chown, which clears set-id bits.
                rustix::fs::chmodat(&dir, name_os, mode, AtFlags::empty())
                    .map_err(|e| t.io_err(&raw, e))?;
            }
            if let Ok(Some(exts)) = entry.pax_extensions() {
                for ext in exts.flatten() {
                    let Ok(key) = ext.key() else { continue };
                    if let Some(xname) = key.strip_prefix("SCHILY.xattr.") {
                        // overlayfs reads its own xattrs off the layers
                        // (redirect, metacopy, opaque, origin...): a layer
                        // must not steer the overlay a container runs on.
                        // Opaque dirs come only from `.wh..wh..opq`.
                        if is_overlay_xattr(xname) {
                            continue;
                        }
                        // Best effort, as docker: unsupported namespaces are skipped.
                        let _ = rustix::fs::lsetxattr(
                            proc_path(&dir, name_os),
                            xname,
                            ext.value_bytes(),
                            rustix::fs::XattrFlags::empty(),
                        );
                    }
                }
            }
            let mtime = header.mtime().unwrap_or(0);
            if kind.is_dir() {
                dir_times.push((parts.clone(), mtime));
            } else {
                set_mtime(&dir, name_os, mtime).map_err(|e| t.io_err(&raw, e))?;
            }
        }
    }
    // Directory times last: creating children changed them.
    for (parts, mtime) in dir_times.iter().rev() {
        if let Some((name, parents)) = parts.split_last() {
            let dir = t.dir(parents, name)?;
            let _ = set_mtime(&dir, OsStr::from_bytes(name), *mtime);
        }
    }
    // Hash the rest of the stream (tar end blocks) so the diff ID is whole.
    io::copy(&mut hashing, &mut io::sink()).map_err(bad_tar)?;
    let (diff_id, _) = hashing.finish();
    Ok(Applied {
        diff_id,
        size,
        skipped_devices,
    })
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
