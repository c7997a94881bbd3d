//! Layer tars: writing one from a directory (an overlay upper dir or a plain
//! tree); applying one onto a snapshot directory is `apply.rs`.
//!
//! Writing is deterministic: entries sorted by name, numeric uid/gid with no
//! user names, mtimes clamped to `SOURCE_DATE_EPOCH` when set, hardlinks by
//! inode (never for overlay whiteouts, which share one inode), xattrs as PAX
//! records. The tar is hashed (diff ID), compressed and hashed again (blob
//! digest) in one streaming pass; no layer is ever held in memory.

use crate::blobs::{BlobWriter, Blobs};
use crate::digest::{Digest, HashingWriter};
use crate::error::{IoContext, Result};
use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub const MEDIA_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

pub(crate) const WHITEOUT_PREFIX: &str = ".wh.";
pub(crate) const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// What overlayfs mounted with `userxattr` (in a user namespace) reads.
const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

/// The xattr that marks a snapshot directory opaque for the overlays this
/// process mounts: `trusted.overlay.opaque`, or in a user namespace
/// (rootless kiln; the executor then mounts with `userxattr`, and
/// trusted.* cannot be set) `user.overlay.opaque`.
pub(crate) fn overlay_opaque_xattr() -> &'static str {
    // The same test as `kiln_executor::rootless::in_user_namespace` (the
    // store may not depend on the executor): not the initial namespace.
    let initial = fs::read_to_string("/proc/self/uid_map").map_or(true, |m| {
        m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"]
    });
    if initial {
        OVERLAY_OPAQUE_XATTR
    } else {
        USER_OVERLAY_OPAQUE_XATTR
    }
}

/// Applying a layer lives in `apply.rs`, with the extractor ADD uses.
pub use crate::apply::{apply_layer, extract, ExtractOptions};

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
            source_date_epoch: None,
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
    Gzip(crate::pgzip::ParGzEncoder<BlobWriter>),
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
        Compression::Gzip => Encoder::Gzip(crate::pgzip::ParGzEncoder::new(blob)),
        Compression::Zstd => Encoder::Zstd(zstd::Encoder::new(blob, 3).at(dir)?),
    };
    let (encoder, diff_id, _) = write_tar(dir, opts.source_date_epoch, encoder)?;
    let blob = encoder.finish().at(dir)?;
    let (digest, size) = blob.commit(None, "layer")?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: opts.compression.media_type(),
    })
}

/// The diff ID and size of the tar [`write_layer`] would write for `dir`,
/// computed as it streams: no file, no compression.
pub fn tar_digest(dir: &Path, source_date_epoch: Option<u64>) -> Result<(Digest, u64)> {
    let (_, diff_id, size) = write_tar(dir, source_date_epoch, io::sink())?;
    Ok((diff_id, size))
}

/// Streams the layer tar of `dir` into `sink`; returns the sink, the tar's
/// digest (diff ID) and its size.
pub(crate) fn write_tar<W: Write>(
    dir: &Path,
    epoch: Option<u64>,
    sink: W,
) -> Result<(W, Digest, u64)> {
    // Fixed-size chunks into the compressor keep its output independent of
    // how the tar writer happens to split its writes.
    let chunked = io::BufWriter::with_capacity(64 * 1024, sink);
    let mut tar = tar::Builder::new(HashingWriter::new(chunked));
    tar.mode(tar::HeaderMode::Complete);
    let mut state = WalkState {
        links: HashMap::new(),
        epoch,
    };
    append_dir(&mut tar, dir, Path::new(""), &mut state)?;
    let hashing = tar.into_inner().at(dir)?;
    let (chunked, diff_id, size) = hashing.finish();
    let sink = chunked.into_inner().map_err(|e| e.into_error()).at(dir)?;
    Ok((sink, diff_id, size))
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
pub(crate) fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

/// Whether an upper dir's directory is opaque: marked by a root overlay
/// (trusted.*) or a rootless one (user.*).
fn is_opaque(path: &Path) -> bool {
    [OVERLAY_OPAQUE_XATTR, USER_OVERLAY_OPAQUE_XATTR]
        .iter()
        .any(|name| {
            let mut v = [0u8; 8];
            matches!(rustix::fs::lgetxattr(path, *name, &mut v), Ok(1) if v[0] == b'y')
        })
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

/// Opens a decompressing reader over a tar stream, sniffing the format:
/// gzip and zstd (the OCI layer types), and bzip2 and xz as well, as
/// moby's `DecompressStream` reads them for `ADD` of a local archive.
pub fn decompress<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(256 * 1024, reader);
    let head = buf.fill_buf()?;
    if head.starts_with(b"BZh") {
        return Ok(Box::new(bzip2::read::MultiBzDecoder::new(buf)));
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        return Ok(Box::new(xz2::read::XzDecoder::new_multi_decoder(buf)));
    }
    let kind = Compression::detect(head);
    Ok(match kind {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(buf)?),
    })
}
