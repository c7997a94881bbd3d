//! The canonical byte encoding digests are taken over. Every field is
//! tagged and length-prefixed, maps are written sorted, nothing depends on
//! `Hash`, memory layout or the order a `HashMap` iterates in. Changing how
//! an op encodes changes every cache key: the golden test in `graph.rs`
//! pins digests so such a change is seen in review.

use sha2::{Digest as _, Sha256};

/// Writes fields into a hasher.
pub struct Encoder {
    hasher: Sha256,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    pub fn new() -> Self {
        Encoder {
            hasher: Sha256::new(),
        }
    }

    fn raw(&mut self, b: &[u8]) {
        self.hasher.update(b);
    }

    /// A field name: keeps "a"+"bc" distinct from "ab"+"c" and makes the
    /// encoding self-describing for debugging.
    pub fn tag(&mut self, name: &str) -> &mut Self {
        self.raw(&[0x01]);
        self.bytes_inner(name.as_bytes());
        self
    }

    fn bytes_inner(&mut self, b: &[u8]) {
        self.raw(&(b.len() as u64).to_be_bytes());
        self.raw(b);
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.raw(&[0x02]);
        self.bytes_inner(s.as_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.raw(&[0x03]);
        self.bytes_inner(b);
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&[0x04]);
        self.raw(&v.to_be_bytes());
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.raw(&[0x05, u8::from(v)]);
        self
    }

    pub fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            None => self.raw(&[0x06]),
            Some(s) => {
                self.raw(&[0x07]);
                self.str(s);
            }
        }
        self
    }

    pub fn strs<S: AsRef<str>>(&mut self, items: &[S]) -> &mut Self {
        self.raw(&[0x08]);
        self.raw(&(items.len() as u64).to_be_bytes());
        for i in items {
            self.str(i.as_ref());
        }
        self
    }

    /// A map, written in sorted key order whatever order it is given in.
    pub fn map<'a>(&mut self, items: impl IntoIterator<Item = (&'a str, &'a str)>) -> &mut Self {
        let mut sorted: Vec<(&str, &str)> = items.into_iter().collect();
        sorted.sort();
        self.raw(&[0x09]);
        self.raw(&(sorted.len() as u64).to_be_bytes());
        for (k, v) in sorted {
            self.str(k).str(v);
        }
        self
    }

    pub fn digest(&mut self, d: &Fingerprint) -> &mut Self {
        self.raw(&[0x0a]);
        self.raw(&d.0);
        self
    }

    pub fn finish(self) -> Fingerprint {
        Fingerprint(self.hasher.finalize().into())
    }
}

/// A sha256 over a canonical encoding: a vertex's definition digest or
/// cache key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", &self.hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(f: impl FnOnce(&mut Encoder)) -> Fingerprint {
        let mut e = Encoder::new();
        f(&mut e);
        e.finish()
    }

    #[test]
    fn boundaries_and_order() {
        assert_ne!(
            fp(|e| {
                e.str("ab").str("c");
            }),
            fp(|e| {
                e.str("a").str("bc");
            })
        );
        assert_ne!(
            fp(|e| {
                e.strs(&["a", "b"]);
            }),
            fp(|e| {
                e.strs(&["a"]).strs(&["b"]);
            })
        );
        assert_eq!(
            fp(|e| {
                e.map([("b", "2"), ("a", "1")]);
            }),
            fp(|e| {
                e.map([("a", "1"), ("b", "2")]);
            })
        );
        assert_ne!(
            fp(|e| {
                e.opt_str(None);
            }),
            fp(|e| {
                e.opt_str(Some(""));
            })
        );
    }
}
