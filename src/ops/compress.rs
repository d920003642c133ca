//! `compress` and `decompress`: turn a `.docker` archive into its `.zip` or `.zst` and back.
//! The tar is checked in full as it streams (its structure, every digest, the image ID against
//! the name): what is written is committed, and the source removed, only when it is sound, so a
//! damaged source never costs the archive beside it, or itself.

use std::path::PathBuf;

use crate::archive::Archive;
use crate::codec::{self, Compression};
use crate::error::Result;
use crate::image::verify::StreamCheck;
use crate::lock::DirLock;
use crate::meta::{self, Summary};
use crate::progress::Reporter;

/// Compresses the `.docker` archive `src` into the format `compression` names, beside it, and
/// removes the `.docker`; returns the new archive's path. `_lock` is the artifacts directory's
/// lock (none for an archive outside it). The image's ID and creation time go
/// into a ZIP's comment, so that `images --created` reads them without inflating (seeking over
/// the tar's headers costs little).
pub fn compress(
    _lock: Option<&DirLock>,
    src: &Archive,
    compression: &Compression,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let comment = crate::image::inspect(src)
        .ok()
        .map(|info| Summary::of(&info, &src.name.id).zip_comment());
    let mut check = StreamCheck::start(&src.name.id);
    let dest = codec::compress_checked(
        src,
        compression,
        comment.as_deref(),
        reporter,
        Some(&mut check),
    )?;
    remember(&dest, &check);
    Ok(dest)
}

/// Turns the compressed archive `src` back into the `.docker` beside it, and removes `src`;
/// `_lock` is the artifacts directory's lock (none for an archive outside it).
pub fn decompress(
    _lock: Option<&DirLock>,
    src: &Archive,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let mut check = StreamCheck::start(&src.name.id);
    let dest = codec::decompress_checked(src, reporter, Some(&mut check))?;
    remember(&dest, &check);
    Ok(dest)
}

/// Remembers that the archive toolbox just wrote at `path` was verified in full as it was
/// written (see [`meta::known_verified`]).
pub(crate) fn remember(path: &std::path::Path, check: &StreamCheck) {
    if let (Some(info), Ok(archive)) = (&check.image, Archive::from_path(path)) {
        meta::remember_verified(&archive, info);
    }
}
