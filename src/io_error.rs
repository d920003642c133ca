//! The files layer's errors: an I/O error and the path it happened at, which every layer above
//! wraps, and a missing artifacts directory.

use std::io;
use std::path::{Path, PathBuf};

/// Reading or writing `path` failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// An I/O error about `path`.
    pub fn new(path: impl AsRef<Path>, source: io::Error) -> IoError {
        IoError {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Attaches a path to an I/O result.
pub trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(path, e))
    }
}

/// The artifacts directory does not exist (commands never create it behind the user's back).
#[derive(Debug, thiserror::Error)]
#[error(
    "artifacts directory `{}` does not exist: create it, or choose another with --basedir, \
     TOOLBOX_ARTIFACTS_DIR or `artifacts_dir` in the config file",
    path.display()
)]
pub struct MissingDir {
    pub path: PathBuf,
}
