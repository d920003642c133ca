//! The library's error type: every message names the thing that is wrong and, where there is
//! one, what to do about it.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "`{name}` is not an archive name: expected <image>_<version>_<id>.<format>, \
         where <id> is 12 lower-case hex digits"
    )]
    NotAnArchiveName { name: String },

    #[error("cannot name an archive with {field} `{value}`: {reason}")]
    InvalidNamePart {
        field: &'static str,
        value: String,
        reason: String,
    },

    #[error("invalid version `{version}`: {reason}")]
    InvalidVersion { version: String, reason: String },

    #[error(
        "version `{version}` gives the docker tag `{tag}`, which is not valid: a tag is 1 to 128 \
         letters, digits, `_`, `.` or `-`, and does not start with `.` or `-`"
    )]
    InvalidTag { version: String, tag: String },

    #[error(
        "artifacts directory `{}` does not exist: create it, or choose another with --basedir, \
         TOOLBOX_ARTIFACTS_DIR or `artifacts_dir` in the config file",
        path.display()
    )]
    MissingBasedir { path: PathBuf },

    #[error("artifacts directory `{}` is not a directory", path.display())]
    BasedirNotADirectory { path: PathBuf },

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

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

    #[error("compression level {level} is not valid for {format}: use {range}")]
    InvalidLevel {
        format: String,
        level: u32,
        range: &'static str,
    },

    #[error("`{format}` is not a compressed format: use zip or zst")]
    NotACompressedFormat { format: String },

    #[error(
        "another toolbox run holds the lock on `{}`; wait for it, or run again without --no-wait",
        dir.display()
    )]
    Locked { dir: PathBuf },

    #[error("`{}` is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },

    #[error("`{reference}` is not a valid reference: {reason}")]
    BadReference { reference: String, reason: String },

    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),

    #[error("`{}`: {reason}", path.display())]
    Refused { path: PathBuf, reason: String },

    #[error(
        "`{}` is not empty: extract writes into an empty or missing directory",
        path.display()
    )]
    NotEmpty { path: PathBuf },

    #[error("`{path}` is not in the image of `{}`", archive.display())]
    NotInImage { path: String, archive: PathBuf },

    #[error("`{}` is not a file", path.display())]
    NotAFile { path: PathBuf },

    #[error("`{}` is not a valid ZIP archive: {reason}", path.display())]
    BadZip { path: PathBuf, reason: String },

    #[error("config file `{}`: {message}", path.display())]
    Config { path: PathBuf, message: String },

    #[error("environment variable {name}=`{value}`: {reason}")]
    BadEnvironment {
        name: &'static str,
        value: String,
        reason: String,
    },

    #[error("base URL `{url}` is not valid: {reason}")]
    BadUrl { url: String, reason: String },

    #[error(
        "cannot reach the Docker engine at {address}: {reason}. Start an engine (dockerd), or \
         point DOCKER_HOST (or docker_host in the config file) at a running one"
    )]
    EngineUnreachable { address: String, reason: String },

    #[error("{action}: {reason}")]
    Engine { action: String, reason: String },

    #[error(
        "image `{reference}` is not in the engine: build it with `toolbox build`, or pull it with \
         --pull if-not-present"
    )]
    ImageNotFound { reference: String },

    #[error("building `{reference}` failed{}: {message}", step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default())]
    BuildFailed {
        reference: String,
        step: Option<String>,
        message: String,
    },

    #[error(
        "`{}` holds image {found}, but its name says {expected}: the file was renamed or is not \
         what it claims",
        path.display()
    )]
    IdMismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },

    #[error(
        "`{}` already exists in the foreign format `{format}`; move or rename it, then run again \
         (nothing was written)",
        path.display()
    )]
    ForeignTwin { path: PathBuf, format: String },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error about `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Attaches a path to an I/O result.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
