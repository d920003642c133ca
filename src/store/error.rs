//! What can go wrong finding archives in the artifacts directory.

use std::path::PathBuf;

use crate::archive::{ArchiveFileError, WrongFormat};
use crate::io_error::{IoError, MissingDir};

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    MissingBasedir(#[from] MissingDir),

    #[error("artifacts directory `{}` is not a directory", path.display())]
    BasedirNotADirectory { path: PathBuf },

    #[error("no archive of image `{image}` in `{}`", dir.display())]
    NoArchive { image: String, dir: PathBuf },

    #[error(
        "every archive of image `{image}` in `{}` is broken ({count} failed the quick check; \
         `toolbox images {image} --check` lists them): rebuild it, or restore a good copy",
        dir.display()
    )]
    AllBroken {
        image: String,
        dir: PathBuf,
        count: usize,
    },

    #[error("{count} archives match {prefix}: {list}; give more digits of the image ID")]
    AmbiguousId {
        count: usize,
        prefix: String,
        list: String,
    },

    #[error(
        "no archive of image `{prefix}`, and none whose image ID starts with {prefix}, in `{}`",
        dir.display()
    )]
    NoIdMatch { prefix: String, dir: PathBuf },

    #[error("no {format} archive of `{what}` in `{}`", dir.display())]
    NoArchiveInFormat {
        what: String,
        format: String,
        dir: PathBuf,
    },

    #[error(transparent)]
    WrongFormat(#[from] WrongFormat),

    #[error(transparent)]
    File(#[from] ArchiveFileError),

    #[error(transparent)]
    Io(#[from] IoError),
}
