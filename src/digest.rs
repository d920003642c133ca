//! Digests: `sha256:<hex>` strings, image IDs and their prefixes, and the one reader that hashes
//! what streams through it.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// The number of hex digits of an image ID that archive names carry.
pub const SHORT_ID_LEN: usize = 12;

/// `sha256:<hex>` of a finished hash.
pub fn hex(hasher: Sha256) -> String {
    let digest = hasher.finalize();
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    hex(h)
}

/// Whether `text` is a digest as toolbox takes them from a document: `sha256:` and 64
/// lower-case hex digits (nothing that could name another path).
pub fn is_sha256(text: &str) -> bool {
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Deserializes a digest that must be [`is_sha256`].
pub fn deserialize_sha256<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    if is_sha256(&text) {
        Ok(text)
    } else {
        Err(serde::de::Error::custom(format!(
            "`{}` is not a sha256 digest (sha256: and 64 lower-case hex digits)",
            text.escape_debug()
        )))
    }
}

/// Deserializes a content size, which the OCI specification makes a signed 64-bit number.
pub fn deserialize_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let size = <u64 as serde::Deserialize>::deserialize(d)?;
    if i64::try_from(size).is_ok() {
        Ok(size)
    } else {
        Err(serde::de::Error::custom(format!(
            "the size {size} is out of range (at most 2^63-1)"
        )))
    }
}

/// The hex digits of a digest, without its `sha256:` algorithm prefix.
pub fn hex_part(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The 12 lower-case hex digits that archive names carry, of a full image ID (`sha256:<64 hex>`
/// or the bare hex digits); `None` when it is not an image ID.
pub fn short_id(full: &str) -> Option<String> {
    let hex = hex_part(full);
    match hex.get(..SHORT_ID_LEN) {
        Some(short) if short.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(short.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// The lower-case hex digits of an image ID or ID prefix (`sha256:` allowed, at least 4 digits,
/// at most 64); `None` for anything else.
pub fn id_prefix(arg: &str) -> Option<String> {
    let hex = hex_part(arg);
    ((4..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// The sha256 and the length of bytes seen piece by piece (a stream's chunks).
#[derive(Clone, Default)]
pub struct Hasher {
    hasher: Sha256,
    size: u64,
}

impl Hasher {
    /// Adds the next piece.
    pub fn update(&mut self, piece: &[u8]) {
        self.hasher.update(piece);
        self.size += piece.len() as u64;
    }

    /// The bytes seen so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `sha256:<hex>` of the bytes seen so far.
    pub fn digest(&self) -> String {
        hex(self.hasher.clone())
    }

    /// `sha256:<hex>` of every byte seen, and how many there were.
    pub fn finish(self) -> (String, u64) {
        (hex(self.hasher), self.size)
    }
}

/// A reader that hashes (sha256) and counts what is read through it, and keeps a copy of it
/// when asked (small documents read while they are hashed).
pub struct HashingReader<'a, R> {
    inner: R,
    hash: Hasher,
    keep: Option<&'a mut Vec<u8>>,
}

impl<'a, R: Read> HashingReader<'a, R> {
    /// Hashes what is read from `inner`.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hash: Hasher::default(),
            keep: None,
        }
    }

    /// Also appends what is read to `keep`.
    pub fn keeping(inner: R, keep: &'a mut Vec<u8>) -> Self {
        HashingReader {
            keep: Some(keep),
            ..HashingReader::new(inner)
        }
    }

    /// The bytes read so far.
    pub fn size(&self) -> u64 {
        self.hash.size()
    }

    /// `sha256:<hex>` of what was read so far.
    pub fn digest(&self) -> String {
        self.hash.digest()
    }

    /// `sha256:<hex>` of everything read, and how many bytes that was.
    pub fn finish(self) -> (String, u64) {
        self.hash.finish()
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        if let Some(keep) = self.keep.as_deref_mut() {
            keep.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_ids() {
        assert_eq!(
            sha256(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let full = format!("sha256:{}", "0123456789ABCDEF".repeat(4));
        assert_eq!(short_id(&full).as_deref(), Some("0123456789ab"));
        assert_eq!(short_id("sha256:xyz"), None);
        assert_eq!(id_prefix("sha256:ABCD").as_deref(), Some("abcd"));
        assert_eq!(id_prefix("abc"), None);
        assert_eq!(id_prefix("web1"), None);
        assert_eq!(id_prefix(&"a".repeat(65)), None);
    }

    #[test]
    fn the_hashing_reader_hashes_counts_and_keeps() {
        let mut kept = Vec::new();
        let mut r = HashingReader::keeping(&b"abc"[..], &mut kept);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert_eq!(r.digest(), sha256(b"abc"));
        assert_eq!(r.finish(), (sha256(b"abc"), 3));
        assert_eq!(kept, b"abc");
    }
}
