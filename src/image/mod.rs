//! What is inside an image archive, read from the archive alone (no engine): one index of its
//! `docker save` tar ([`TarIndex`]), the classic and OCI layouts it may come in, and what is
//! done with them — `inspect` (the image's facts), `verify` (every digest), `extract` (the root
//! filesystem). Push reads the same index.

mod error;
pub mod extract;
pub mod index;
pub mod info;
pub mod ingest;
pub mod layout;
pub mod thin;
pub mod verify;
pub mod write;

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

pub use error::{ArchiveError, ImageError, Refusal};
pub use index::{FileDigest, Member, Reading, TarIndex, blob_path};
pub use info::{ImageInfo, LayerInfo, ManifestRef, parse_time};
pub use verify::verify;

use crate::archive::Archive;
use crate::codec;
use crate::digest;
use crate::io_error::{IoContext, IoError};

type Result<T> = std::result::Result<T, ArchiveError>;
use crate::name::Format;
use crate::progress::{ProgressReader, Reporter, Silent};

/// Reads the image an archive holds (the first image, for an archive of several).
pub fn inspect(archive: &Archive) -> Result<ImageInfo> {
    read(archive).map(|(info, _)| info)
}

/// Calls `f` with a stream of the `docker save` tar of an archive of any known format: a `.ref`
/// archive's tar is composed from the layer store's blobs ([`write::Composed`]), the others come
/// out of their file ([`codec::with_tar_reader`]).
pub fn with_tar<T, E>(
    archive: &Archive,
    reporter: &dyn Reporter,
    f: impl FnOnce(&mut dyn Read) -> std::result::Result<T, E>,
) -> std::result::Result<T, E>
where
    E: From<codec::CodecError> + From<IoError> + From<ArchiveError>,
{
    match archive.name.format {
        Format::Ref => {
            let composed = write::Composed::of(archive).map_err(ArchiveError::from)?;
            reporter.start(Some(composed.tar_size()));
            f(&mut ProgressReader::new(composed.reader(), reporter))
        }
        _ => codec::with_tar_reader(archive, reporter, f),
    }
}

/// Random access to the members of an archive's tar, where there is one without reading the
/// tar through: a `.docker` (seeking) and a `.ref` (its blobs in the store).
pub enum Members {
    Tar(File),
    Store(Box<write::Composed>),
}

impl Members {
    /// Opens `archive` for random access; `None` for a compressed archive.
    pub fn open(archive: &Archive) -> Result<Option<Members>> {
        Ok(match archive.name.format {
            Format::Docker => Some(Members::Tar(File::open(&archive.path).at(&archive.path)?)),
            Format::Ref => Some(Members::Store(Box::new(write::Composed::of(archive)?))),
            _ => None,
        })
    }

    /// The bytes of the file member `found` of `index` (the index of this archive).
    pub fn read<'a>(&'a self, found: &index::FileRef<'_>) -> Result<Box<dyn Read + Send + 'a>> {
        match self {
            Members::Tar(file) => {
                let mut data = file;
                data.seek(SeekFrom::Start(found.offset))
                    .map_err(|e| IoError::new(found.path, e))?;
                Ok(Box::new(data.take(found.size)))
            }
            Members::Store(composed) => Ok(composed.open(found.path)?),
        }
    }
}

/// Reads the image an archive holds and the index of the archive's tar (member offsets are
/// usable for a `.docker` only; a `.ref`'s members open through [`Members`]); the image ID must
/// agree with the file name.
pub fn read(archive: &Archive) -> Result<(ImageInfo, TarIndex)> {
    let damaged = |source| ArchiveError::Damaged {
        path: archive.path.clone(),
        source,
    };
    let index = match archive.name.format {
        Format::Ref => write::Composed::of(archive)?.index(),
        Format::Docker => {
            let file = File::open(&archive.path).at(&archive.path)?;
            TarIndex::read_seekable(BufReader::new(file)).map_err(|e| indexing(&archive.path, e))?
        }
        _ => codec::with_tar_reader(archive, &Silent, |tar| {
            TarIndex::read(tar, Reading::Documents).map_err(|e| indexing(&archive.path, e))
        })?,
    };
    let info = index.image().map_err(damaged)?;
    check_name(&info, &archive.name.id).map_err(damaged)?;
    Ok((info, index))
}

/// The error of indexing the tar of the archive at `path`: a failed read of a member's bytes is
/// an I/O error (it may pass, and is not remembered as damage); anything else is damage.
pub(crate) fn indexing(path: &Path, e: ImageError) -> ArchiveError {
    match e {
        ImageError::Read { source, .. } => IoError::new(path, source).into(),
        source => ArchiveError::Damaged {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// Checks that the ID in the archive's name begins one of the image's identities: its config
/// digest (the ID a classic engine shows, and a pull's), or the digest of a manifest or index
/// that leads to it (the ID a containerd-store engine shows).
fn check_name(info: &ImageInfo, name_id: &str) -> std::result::Result<(), ImageError> {
    let ids = info.identities();
    if ids
        .iter()
        .any(|id| digest::hex_part(id).starts_with(name_id))
    {
        Ok(())
    } else {
        Err(ImageError::IdMismatch {
            id: info.id.clone(),
            others: info
                .manifests
                .iter()
                .map(|m| {
                    let kind = if m.is_index { "index" } else { "manifest" };
                    format!(", {kind} {}", m.digest)
                })
                .collect(),
            name_id: name_id.to_string(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
