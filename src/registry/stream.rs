//! Bytes on their way up: uploads in chunks of a fixed size, and a reader that hashes and
//! counts what goes through it.

use std::io::{self, Read};

use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::progress::Reporter;

/// The size of each upload request of a blob (oci-client's largest chunk).
pub(super) const UPLOAD_CHUNK: usize = 4 << 20;

/// Gathers a stream's pieces into chunks of at least `size` bytes (the last may be smaller):
/// each chunk is one upload request. An error is passed on, never a short chunk before it.
pub(super) fn batched(
    stream: impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static,
    size: usize,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold((Box::pin(stream), false), move |(mut s, done)| async move {
        if done {
            return None;
        }
        let mut buf = bytes::BytesMut::new();
        loop {
            match s.next().await {
                Some(Ok(piece)) => {
                    buf.extend_from_slice(&piece);
                    if buf.len() >= size {
                        return Some((Ok(buf.freeze()), (s, false)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (s, true))),
                None if buf.is_empty() => return None,
                None => return Some((Ok(buf.freeze()), (s, true))),
            }
        }
    })
}

/// Hashes (sha256) what goes through, and reports its length.
pub(super) struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    reporter: &'a dyn Reporter,
}

impl<'a> HashingReader<'a> {
    pub(super) fn new(inner: &'a mut dyn Read, reporter: &'a dyn Reporter) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            reporter,
        }
    }

    /// `sha256:<hex>` of what went through so far.
    pub(super) fn digest(&self) -> String {
        crate::image::hex(self.hasher.clone())
    }
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.reporter.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_every_byte_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pieces: Vec<io::Result<Bytes>> =
            (0..10u8).map(|i| Ok(Bytes::from(vec![i; 3]))).collect();
        let out: Vec<io::Result<Bytes>> =
            rt.block_on(batched(futures_util::stream::iter(pieces), 7).collect());
        let sizes: Vec<usize> = out.iter().map(|b| b.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, vec![9, 9, 9, 3]);
        let all: Vec<u8> = out.into_iter().flat_map(|b| b.unwrap().to_vec()).collect();
        assert_eq!(all, (0..10u8).flat_map(|i| [i; 3]).collect::<Vec<_>>());
        let failing = vec![Ok(Bytes::from_static(b"ab")), Err(io::Error::other("cut"))];
        let out: Vec<io::Result<Bytes>> =
            rt.block_on(batched(futures_util::stream::iter(failing), 7).collect());
        assert_eq!(out.len(), 1);
        assert!(
            out[0].is_err(),
            "an error is passed on, never a short chunk"
        );
    }

    #[test]
    fn the_hashing_reader_hashes_and_counts() {
        struct Count(std::sync::atomic::AtomicU64);
        impl Reporter for Count {
            fn start(&self, _: Option<u64>) {}
            fn advance(&self, n: u64) {
                self.0.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            }
            fn finish(&self) {}
        }
        let count = Count(0.into());
        let mut data: &[u8] = b"hello";
        let mut reader = HashingReader::new(&mut data, &count);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        assert_eq!(reader.digest(), crate::image::sha256(b"hello"));
        assert_eq!(count.0.into_inner(), 5);
    }
}
