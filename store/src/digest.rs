//! Content digests (`sha256:<64 hex>`) and a writer that computes one while
//! data streams through it.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// A sha256 content digest. Can only be made by hashing or by parsing a
/// well-formed `sha256:<64 lower-case hex>` string.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub fn of(data: &[u8]) -> Digest {
        Digest(Sha256::digest(data).into())
    }

    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hasher(h: Sha256) -> Digest {
        Digest(h.finalize().into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
pub struct DigestError(pub String);

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let bad = || DigestError(s.to_string());
        let hex = s.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex, &mut out).map_err(|_| bad())?;
        Ok(Digest(out))
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Passes writes through to `inner`, hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the digest and the byte count of what was written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.size)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes what is read through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    pub fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.size)
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Reads a blob that must hash to `expected` and be `size` bytes long:
/// the read that reaches the end (or a byte past `size`) fails with
/// `InvalidData` when it does not, so a corrupt blob is never passed on
/// as good (a save or copy fails instead).
pub struct VerifyingReader<R> {
    inner: HashingReader<io::Take<R>>,
    expected: Digest,
    size: u64,
}

impl<R: io::Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        VerifyingReader {
            // One byte more than expected shows a blob that grew.
            inner: HashingReader::new(inner.take(size + 1)),
            expected,
            size,
        }
    }
}

impl<R: io::Read> io::Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if self.inner.size > self.size {
            return Err(bad(format!(
                "blob {} is corrupt: longer than its {} bytes",
                self.expected, self.size
            )));
        }
        if n == 0 && !buf.is_empty() {
            if self.inner.size != self.size {
                return Err(bad(format!(
                    "blob {} is corrupt: {} bytes, expected {}",
                    self.expected, self.inner.size, self.size
                )));
            }
            let actual = Digest::from_hasher(self.inner.hasher.clone());
            if actual != self.expected {
                return Err(bad(format!(
                    "blob {} is corrupt: its content hashes to {actual}",
                    self.expected
                )));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn verifying_reader_refuses_changed_short_and_long_blobs() {
        let data = b"layer bytes".to_vec();
        let d = Digest::of(&data);
        let read = |bytes: &[u8], size: u64| {
            let mut out = Vec::new();
            VerifyingReader::new(bytes, d.clone(), size)
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read(&data, data.len() as u64).unwrap(), data);
        let mut flipped = data.clone();
        flipped[0] ^= 1;
        assert!(read(&flipped, data.len() as u64)
            .unwrap_err()
            .to_string()
            .contains("hashes to"));
        assert!(read(&data[..4], data.len() as u64)
            .unwrap_err()
            .to_string()
            .contains("4 bytes"));
        let mut longer = data.clone();
        longer.push(b'!');
        assert!(read(&longer, data.len() as u64)
            .unwrap_err()
            .to_string()
            .contains("longer"));
    }

    #[test]
    fn parses_and_prints() {
        let d = Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
        assert!("sha256:E3B0".parse::<Digest>().is_err());
        assert!("md5:abc".parse::<Digest>().is_err());
        assert!(format!("sha256:{}", "g".repeat(64))
            .parse::<Digest>()
            .is_err());
    }
}
