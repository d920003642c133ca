//! One blob downloaded from a registry as it streams: checked against its digest and size,
//! resumed with `Range` after what was already passed on when the download breaks off, retried
//! like every registry request. Where the bytes go is a [`Sink`]: the tar a pull writes, or a
//! blob of a layer store.

use std::future::Future;
use std::io::Write;

use bytes::Bytes;
use futures_util::StreamExt;

use super::blob::{blob_from, skip_start};
use super::error::RegistryError;
use super::{Reference, Registry};
use crate::digest::Hasher;
use crate::oci::Descriptor;
use crate::pipe;
use crate::progress::Reporter;

/// Where a blob's bytes go, in order, each once.
pub trait Sink {
    fn put(&mut self, chunk: Bytes) -> impl Future<Output = Result<(), RegistryError>> + Send;
}

impl Sink for &pipe::Sender {
    async fn put(&mut self, chunk: Bytes) -> Result<(), RegistryError> {
        if self.send(chunk).await {
            Ok(())
        } else {
            Err(RegistryError::WriterStopped)
        }
    }
}

/// A writer (a file) as a [`Sink`].
pub struct WriteSink<W>(pub W);

impl<W: Write + Send> Sink for WriteSink<W> {
    async fn put(&mut self, chunk: Bytes) -> Result<(), RegistryError> {
        self.0
            .write_all(&chunk)
            .map_err(|e| RegistryError::Store(e.to_string()))
    }
}

/// Downloads blob `layer` of `reference`'s repository into `sink`, checked against its digest
/// and size (a mismatch is an error once all of it came).
pub async fn download_blob<S: Sink + Send>(
    registry: &Registry,
    reference: &Reference,
    layer: &Descriptor,
    reporter: &dyn Reporter,
    sink: &mut S,
) -> Result<(), RegistryError> {
    let mut hasher = Hasher::default();
    // What was passed on stays passed on: a download that breaks off resumes after it.
    let mut sent: u64 = 0;
    let mut retry = 0;
    loop {
        let attempt: Result<(), RegistryError> = async {
            let mut from = blob_from(registry, reference, &layer.digest, sent).await?;
            while let Some(chunk) = from.stream.next().await {
                let chunk = chunk.map_err(|e| RegistryError::BlobStream {
                    reference: reference.to_string(),
                    digest: layer.digest.clone(),
                    source: std::io::Error::other(e),
                })?;
                let chunk = skip_start(chunk, &mut from.skip);
                if chunk.is_empty() {
                    continue;
                }
                hasher.update(&chunk);
                if hasher.size() > layer.size {
                    break;
                }
                sent += chunk.len() as u64;
                reporter.advance(chunk.len() as u64);
                sink.put(chunk).await?;
            }
            Ok(())
        }
        .await;
        match attempt {
            Ok(()) if hasher.size() < layer.size && retry < registry.retries => {
                // The answer ended early without an error: the connection was cut.
                let cut = RegistryError::BlobStream {
                    reference: reference.to_string(),
                    digest: layer.digest.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("the download stopped after {sent} of {} bytes", layer.size),
                    ),
                };
                if !registry.wait_to_retry(retry, &cut).await {
                    break;
                }
                retry += 1;
            }
            Ok(()) => break,
            Err(e) if registry.wait_to_retry(retry, &e).await => retry += 1,
            Err(e) => return Err(e),
        }
    }
    let (found, got) = hasher.finish();
    if got != layer.size || found != layer.digest {
        return Err(RegistryError::DigestMismatch {
            what: format!("blob {} of {reference} ({got} bytes)", layer.digest),
            expected: format!("{} ({} bytes)", layer.digest, layer.size),
            found,
        });
    }
    Ok(())
}
