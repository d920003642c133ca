//! An I/O error and the path it happened at: the one error of the files layer that every layer
//! above wraps.

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
