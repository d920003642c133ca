//! What can go wrong finding archives in the artifacts directory.

use std::path::PathBuf;

use crate::archive::ArchiveFileError;
use crate::io_error::IoError;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "artifacts directory `{}` does not exist: create it, or choose another with --basedir, \
         TOOLBOX_ARTIFACTS_DIR or `artifacts_dir` in the config file",
        path.display()
    )]
    MissingBasedir { path: PathBuf },

    #[error("artifacts directory `{}` is not a directory", path.display())]
    BasedirNotADirectory { path: PathBuf },

    #[error("no archive of image `{image}` in `{}`", dir.display())]
    NoArchive { image: String, dir: PathBuf },

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

    #[error("`{}` is a {found} archive; {command} takes a {expected} archive", path.display())]
    WrongFormat {
        path: PathBuf,
        found: String,
        expected: String,
        command: &'static str,
    },

    #[error(transparent)]
    File(#[from] ArchiveFileError),

    #[error(transparent)]
    Io(#[from] IoError),
}
