//! `verify`: one streaming pass over an archive that checks everything — the container (ZIP
//! structure and CRC, or zstd checksum), the tar, the layout (classic or OCI), that the config's
//! sha256 is the image ID and begins with the ID in the file name, that every layer's sha256
//! matches the config's `diff_ids` (gzip layers hashed uncompressed), and that every OCI blob
//! matches its name.

use std::io;

use super::index::{Reading, TarIndex};
use super::{ArchiveError, ImageError, check_name};
use crate::archive::Archive;
use crate::codec;
use crate::io_error::IoError;
use crate::progress::Silent;

/// Checks one archive fully; a damaged one is [`ArchiveError::Damaged`] with what is wrong.
pub fn verify(archive: &Archive) -> Result<(), ArchiveError> {
    let damaged = |source| ArchiveError::Damaged {
        path: archive.path.clone(),
        source,
    };
    let index = codec::with_tar_reader(archive, &Silent, |tar| {
        let index = TarIndex::read(tar, Reading::Hashed);
        // Drain what the tar reader left (padding), so that the container's checks run.
        io::copy(tar, &mut io::sink()).map_err(|e| IoError::new(&archive.path, e))?;
        Ok::<_, ArchiveError>(index)
    })?
    .map_err(damaged)?;
    check(&index, &archive.name.id).map_err(damaged)
}

/// The checks of a hashed index against the ID in the file name.
pub fn check(index: &TarIndex, name_id: &str) -> std::result::Result<(), ImageError> {
    let images = index.images()?;
    for (n, image) in images.iter().enumerate() {
        for layer in &image.layers {
            let found = index
                .file(&layer.path)
                .and_then(|f| f.digest)
                .ok_or_else(|| ImageError::LayerMissing(layer.path.clone()))?;
            if found.diff_id() != layer.diff_id {
                return Err(ImageError::LayerDigest {
                    layer: layer.path.clone(),
                    found: found.diff_id().to_string(),
                    expected: layer.diff_id.clone(),
                });
            }
        }
        // The first image is the one the archive is named after.
        if n == 0 {
            check_name(image, name_id)?;
        }
    }
    for (path, digest) in index.digests() {
        if let Some(hex) = path.strip_prefix("blobs/sha256/")
            && digest.stored != format!("sha256:{hex}")
        {
            return Err(ImageError::BlobDigest {
                path: path.to_string(),
                found: digest.stored.clone(),
            });
        }
    }
    Ok(())
}
