//! Reading an archive's layers for upload: each layer out of the archive (seeking in a
//! `.docker`, one streaming pass through a `.zip` or `.zst`), gzip-compressed on all cores
//! unless stored compressed, handed over as a stream of upload chunks while its uncompressed
//! digest is taken.

use std::collections::HashMap;
use std::io::{self, Read};

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;

use super::error::RegistryError;
use super::stream::{UPLOAD_CHUNK, batched};
use crate::archive::Archive;
use crate::codec;
use crate::digest::HashingReader;
use crate::image::TarIndex;
use crate::image::{ArchiveError, ImageError};
use crate::io_error::IoContext;
use crate::pipe;
use crate::progress::ProgressReader;
use crate::progress::{Reporter, Silent};

/// The gzip level layers are pushed at (gzip's default, as `docker push` uses).
const PUSH_LEVEL: u32 = 6;

/// The bytes of one layer on their way to the registry.
pub(super) type LayerStream =
    futures_util::stream::BoxStream<'static, oci_client::errors::Result<Bytes>>;

/// One layer to read: where it is in the archive, its diff ID, and whether it goes up as
/// stored (a compressed OCI blob) rather than compressed here.
pub(super) struct Wanted {
    pub path: String,
    pub diff_id: String,
    pub as_is: bool,
}

/// What reading one layer found: its path, the diff ID the config gives, and the digest of
/// what was read (for a layer sent as stored, its diff ID: its name is checked by the
/// registry).
pub(super) struct LayerRead {
    pub path: String,
    pub diff_id: String,
    pub found: String,
}

pub(super) use crate::image::index::stored_blob;

/// Reads the layers `wanted` out of the archive, in the archive's order, and sends each, with
/// its diff ID, as a stream of the bytes to upload. Returns what each layer's reading found.
pub(super) fn stream_layers(
    archive: &Archive,
    index: &TarIndex,
    wanted: &[Wanted],
    streams: &tokio::sync::mpsc::Sender<(String, LayerStream)>,
    reporter: &dyn Reporter,
) -> Result<Vec<LayerRead>, RegistryError> {
    let mut found = Vec::new();
    let mut send = |path: &str,
                    diff_id: &str,
                    as_is: bool,
                    data: &mut dyn Read|
     -> Result<(), RegistryError> {
        let (mut writer, stream) = pipe::from_writer();
        let stream: LayerStream = batched(stream, UPLOAD_CHUNK)
            .map(|r| r.map_err(OciDistributionError::IoError))
            .boxed();
        if streams
            .blocking_send((diff_id.to_string(), stream))
            .is_err()
        {
            return Err(RegistryError::UploadStopped);
        }
        // Hashed as it is read, so that the diff_id is checked on the way.
        let mut hashing = HashingReader::new(ProgressReader::new(data, reporter));
        let result = if as_is {
            io::copy(&mut hashing, &mut writer).map(|_| ())
        } else {
            codec::deflate::gzip(
                &mut hashing,
                &mut writer,
                PUSH_LEVEL,
                codec::deflate::default_threads(),
            )
            .map(|_| ())
            .map_err(|e| match e {
                codec::deflate::PipelineError::Read(e)
                | codec::deflate::PipelineError::Write(e) => e,
            })
        };
        match result {
            Ok(()) => writer.finish().at(&archive.path)?,
            Err(e) => {
                let copy = io::Error::new(e.kind(), e.to_string());
                writer.fail(e);
                return Err(RegistryError::ReadLayer {
                    path: path.to_string(),
                    source: copy,
                });
            }
        }
        found.push(LayerRead {
            path: path.to_string(),
            diff_id: diff_id.to_string(),
            // A blob sent as stored must be what its name says (its content's digest is the
            // registry's to check against the config: it was named by that digest).
            found: if as_is {
                let stored = hashing.digest();
                if stored_blob(path).as_deref() == Some(stored.as_str()) {
                    diff_id.to_string()
                } else {
                    stored
                }
            } else {
                hashing.digest()
            },
        });
        Ok(())
    };
    match crate::image::Members::open(archive)? {
        Some(members) => {
            for w in wanted {
                let found = index.file(&w.path).ok_or_else(|| ArchiveError::Damaged {
                    path: archive.path.clone(),
                    source: ImageError::LayerMissing(w.path.clone()),
                })?;
                let mut data = io::BufReader::with_capacity(1 << 20, members.read(&found)?);
                send(&w.path, &w.diff_id, w.as_is, &mut data)?;
            }
        }
        None => {
            // Layers come in the tar's order; a layer linked from several paths is sent once.
            let by_path: HashMap<String, &Wanted> = wanted
                .iter()
                .filter_map(|w| Some((index.file(&w.path)?.path.to_string(), w)))
                .collect();
            crate::image::with_tar(archive, &Silent, |tar| {
                let mut entries = tar::Archive::new(tar);
                let damaged = |e: io::Error| ArchiveError::Damaged {
                    path: archive.path.clone(),
                    source: ImageError::Damaged(e),
                };
                for entry in entries.entries().map_err(damaged)? {
                    let mut entry = entry.map_err(damaged)?;
                    let key = crate::image::index::normalize(&entry.path().map_err(damaged)?)
                        .unwrap_or_default();
                    if let Some(w) = by_path.get(&key) {
                        send(&key, &w.diff_id, w.as_is, &mut entry)?;
                    }
                }
                Ok::<_, RegistryError>(())
            })?;
        }
    }
    Ok(found)
}
