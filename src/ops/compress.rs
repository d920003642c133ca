//! `compress` and `decompress`: turn a `.docker` archive into its `.zip` or `.zst` and back.

use std::path::PathBuf;

use crate::archive::Archive;
use crate::codec::{self, Compression};
use crate::error::Result;
use crate::image;
use crate::lock::DirLock;
use crate::meta::Summary;
use crate::progress::Reporter;

/// Compresses the `.docker` archive `src` into the format `compression` names, beside it, and
/// removes the `.docker`; returns the new archive's path. `_lock` is the lock of the folder that
/// changes (the artifacts directory, or the archive's own folder outside it). The image's ID and creation time go
/// into a ZIP's comment, so that `images --created` reads them without inflating (seeking over
/// the tar's headers costs little).
pub fn compress(
    _lock: &DirLock,
    src: &Archive,
    compression: &Compression,
    reporter: &dyn Reporter,
) -> Result<PathBuf> {
    let comment = image::inspect(src)
        .ok()
        .map(|info| Summary::of(&info, &src.name.id).zip_comment());
    Ok(codec::compress(
        src,
        compression,
        comment.as_deref(),
        reporter,
    )?)
}

/// Turns the compressed archive `src` back into the `.docker` beside it, and removes `src`;
/// `_lock` is the lock of the folder that changes.
pub fn decompress(_lock: &DirLock, src: &Archive, reporter: &dyn Reporter) -> Result<PathBuf> {
    Ok(codec::decompress(src, reporter)?)
}
