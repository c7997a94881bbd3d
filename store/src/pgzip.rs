//! Block-parallel gzip, as pigz makes it: the input is cut into fixed
//! blocks, each compressed on its own thread as a raw deflate stream primed
//! with the 32 KiB of input before it (so the ratio stays that of one
//! stream) and ended with a sync flush, and the pieces are concatenated
//! between one gzip header and trailer. The bytes depend only on the input
//! (the block size is fixed, the thread count is not part of it), so a
//! reproducible build gives the same blob digest on any machine.
//!
//! Hand-written rather than taken from `gzp`: that crate has not had a
//! release since 2023 and brings its own thread pool and channels, while
//! this is one scoped loop over flate2's `Compress` (the backend kiln
//! already uses), with the CRC from `crc32fast`.

use flate2::{Compress, Compression, FlushCompress, Status};
use std::io::{self, Write};

/// Input bytes per block. Large enough that the per-block dictionary and
/// sync marker cost nothing measurable, small enough that a 10 MiB layer
/// still uses every core.
const BLOCK: usize = 1 << 20;
/// deflate's window: what a block may refer back to.
const WINDOW: usize = 32 * 1024;
/// gzip header: deflate, no name, mtime 0, OS unknown (as Go writes it).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A gzip writer that compresses on all cores. Call
/// [`ParGzEncoder::finish`]; dropping it loses the tail.
pub struct ParGzEncoder<W: Write> {
    inner: W,
    /// Input not yet compressed (less than `batch` blocks, or the tail).
    pending: Vec<u8>,
    /// The last `WINDOW` bytes of input before `pending`.
    window: Vec<u8>,
    crc: crc32fast::Hasher,
    len: u64,
    /// Blocks compressed at once (one per thread).
    batch: usize,
    header_written: bool,
}

impl<W: Write> ParGzEncoder<W> {
    pub fn new(inner: W) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(8);
        ParGzEncoder {
            inner,
            pending: Vec::with_capacity(BLOCK * threads),
            window: Vec::new(),
            crc: crc32fast::Hasher::new(),
            len: 0,
            batch: threads,
            header_written: false,
        }
    }

    /// Compresses every whole block in `pending` (all of it, ending the
    /// stream, when `last`) and writes the pieces in order.
    fn compress_pending(&mut self, last: bool) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&HEADER)?;
            self.header_written = true;
        }
        let whole = self.pending.len() / BLOCK * BLOCK;
        let data = std::mem::take(&mut self.pending);
        let mut blocks: Vec<(&[u8], bool)> =
            data[..whole].chunks(BLOCK).map(|b| (b, false)).collect();
        if last {
            // The final block (possibly empty) carries the end marker.
            blocks.push((&data[whole..], true));
        }
        let mut outputs: Vec<io::Result<Vec<u8>>> = Vec::with_capacity(blocks.len());
        for group in blocks.chunks(self.batch) {
            let results: Vec<io::Result<Vec<u8>>> = std::thread::scope(|s| {
                let handles: Vec<_> = group
                    .iter()
                    .map(|&(block, end)| {
                        let dict = dictionary(&data, block, &self.window);
                        s.spawn(move || deflate_block(dict, block, end))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(io::Error::other("compressor panicked")))
                    })
                    .collect()
            });
            outputs.extend(results);
        }
        for out in outputs {
            self.inner.write_all(&out?)?;
        }
        // The window for what follows: the last WINDOW bytes of input so far.
        let consumed = if last { data.len() } else { whole };
        let mut window = std::mem::take(&mut self.window);
        window.extend_from_slice(&data[..consumed]);
        let keep = window.len().saturating_sub(WINDOW);
        window.drain(..keep);
        self.window = window;
        self.pending = data[consumed..].to_vec();
        self.pending.reserve(BLOCK * self.batch);
        Ok(())
    }

    /// Ends the stream (last block, CRC and length) and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.compress_pending(true)?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        self.inner.write_all(&(self.len as u32).to_le_bytes())?;
        Ok(self.inner)
    }
}

/// The dictionary for `block` (a slice of `data`): the `WINDOW` bytes of
/// input right before it, reaching into `window` for the first block.
fn dictionary<'a>(data: &'a [u8], block: &'a [u8], window: &'a [u8]) -> Vec<u8> {
    let offset = block.as_ptr() as usize - data.as_ptr() as usize;
    if offset >= WINDOW {
        return data[offset - WINDOW..offset].to_vec();
    }
    let from_window = WINDOW - offset;
    let mut dict = window[window.len().saturating_sub(from_window)..].to_vec();
    dict.extend_from_slice(&data[..offset]);
    dict
}

/// One block as raw deflate: sync-flushed, or finished when `end`.
fn deflate_block(dict: Vec<u8>, block: &[u8], end: bool) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(Compression::fast(), false);
    if !dict.is_empty() {
        c.set_dictionary(&dict).map_err(io::Error::other)?;
    }
    let flush = if end {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(block.len() + block.len() / 16 + 64);
    loop {
        let read = c.total_in() as usize;
        let status = c
            .compress_vec(&block[read..], &mut out, flush)
            .map_err(io::Error::other)?;
        let done_input = c.total_in() as usize == block.len();
        match status {
            Status::StreamEnd => break,
            // Output full: grow and go on.
            _ if out.len() == out.capacity() => out.reserve(out.capacity() / 2 + 64),
            // Sync flush done: all input in, and room was left over.
            _ if !end && done_input => break,
            _ => out.reserve(64),
        }
    }
    Ok(out)
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.crc.update(buf);
        self.len += buf.len() as u64;
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= BLOCK * self.batch {
            self.compress_pending(false)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are cut by size only (that is what keeps the bytes
        // reproducible); flushing passes on what is already compressed.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], batch: usize, write_size: usize) -> Vec<u8> {
        let mut e = ParGzEncoder::new(Vec::new());
        e.batch = batch;
        for piece in data.chunks(write_size.max(1)) {
            e.write_all(piece).unwrap();
        }
        e.finish().unwrap()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Pseudo-random but compressible: repeats at distances that cross
    /// block boundaries, so the dictionary matters.
    fn sample(len: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                if i % 3 == 0 {
                    (x >> 24) as u8
                } else {
                    b"kiln layers "[i % 12]
                }
            })
            .collect()
    }

    #[test]
    fn round_trips_at_every_size_around_a_block() {
        for len in [0, 1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 17] {
            let data = sample(len);
            assert_eq!(gunzip(&gzip(&data, 2, 70_000)), data, "length {len}");
        }
    }

    /// The bytes depend on the input alone: not on how it was written nor
    /// on how many blocks are compressed at once.
    #[test]
    fn output_does_not_depend_on_threads_or_write_sizes() {
        let data = sample(5 * BLOCK + 4321);
        let one = gzip(&data, 1, 4096);
        assert_eq!(gzip(&data, 3, 1 << 20), one);
        assert_eq!(gzip(&data, 8, 999), one);
    }

    /// The primed dictionary keeps the ratio of a single stream.
    #[test]
    fn ratio_matches_a_single_stream() {
        let data = sample(4 * BLOCK);
        let par = gzip(&data, 4, 65536).len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len();
        assert!(
            (par as f64) < single as f64 * 1.02,
            "parallel {par} vs single {single}"
        );
    }
}
