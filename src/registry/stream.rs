//! Bytes on their way up: uploads in chunks of a fixed size.

use std::io;

use bytes::Bytes;
use futures_util::StreamExt;

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
}
