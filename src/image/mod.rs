//! What is inside an image archive, read from the archive alone (no engine): one index of its
//! `docker save` tar ([`TarIndex`]), the classic and OCI layouts it may come in, and what is
//! done with them — `inspect` (the image's facts), `verify` (every digest), `extract` (the root
//! filesystem). Push reads the same index.

mod error;
pub mod extract;
pub mod index;
pub mod info;
pub mod layout;
pub mod verify;

use std::fs::File;
use std::io::BufReader;

pub use error::{ArchiveError, ImageError, Refusal};
pub use index::{FileDigest, Member, Reading, TarIndex, blob_path};
pub use info::{ImageInfo, LayerInfo, parse_time};
pub use verify::verify;

use crate::archive::Archive;
use crate::codec;
use crate::digest;
use crate::io_error::IoContext;

type Result<T> = std::result::Result<T, ArchiveError>;
use crate::name::Format;
use crate::progress::Silent;

/// Reads the image an archive holds (the first image, for an archive of several).
pub fn inspect(archive: &Archive) -> Result<ImageInfo> {
    read(archive).map(|(info, _)| info)
}

/// Reads the image an archive holds and the index of the archive's tar (member offsets are
/// usable for a `.docker` only); the image ID must agree with the file name.
pub fn read(archive: &Archive) -> Result<(ImageInfo, TarIndex)> {
    let damaged = |source| ArchiveError::Damaged {
        path: archive.path.clone(),
        source,
    };
    let index = match archive.name.format {
        Format::Docker => {
            let file = File::open(&archive.path).at(&archive.path)?;
            TarIndex::read_seekable(BufReader::new(file)).map_err(damaged)?
        }
        _ => codec::with_tar_reader(archive, &Silent, |tar| {
            TarIndex::read(tar, Reading::Documents).map_err(damaged)
        })?,
    };
    let info = index.image().map_err(damaged)?;
    check_name(&info, &archive.name.id).map_err(damaged)?;
    Ok((info, index))
}

/// Checks that the image ID begins with the ID in the archive's name.
fn check_name(info: &ImageInfo, name_id: &str) -> std::result::Result<(), ImageError> {
    if digest::hex_part(&info.id).starts_with(name_id) {
        Ok(())
    } else {
        Err(ImageError::IdMismatch {
            id: info.id.clone(),
            name_id: name_id.to_string(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
