//! The library's error type, at the top of the library: each layer has its own error enum
//! (values, files, codec, image, store, engine, registry, config), and this one wraps them for
//! the use cases and the command line. Every message names the thing that is wrong and, where
//! there is one, what to do about it.

use std::io;
use std::path::{Path, PathBuf};

use crate::archive::ArchiveFileError;
use crate::codec::CodecError;
use crate::config::ConfigError;
use crate::engine::EngineError;
use crate::image::ArchiveError;
use crate::io_error::IoError;
use crate::lock::LockError;
use crate::meta::MetaError;
use crate::name::NameError;
use crate::oci::PlatformError;
use crate::registry::RegistryError;
use crate::store::StoreError;
use crate::version::VersionError;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Name(#[from] NameError),

    #[error(transparent)]
    Version(#[from] VersionError),

    #[error(transparent)]
    Platform(#[from] PlatformError),

    #[error(transparent)]
    Io(#[from] IoError),

    #[error(transparent)]
    Lock(#[from] LockError),

    #[error(transparent)]
    ArchiveFile(#[from] ArchiveFileError),

    #[error(transparent)]
    Codec(#[from] CodecError),

    #[error(transparent)]
    Archive(#[from] ArchiveError),

    #[error(transparent)]
    Layout(#[from] crate::layout::LayoutError),

    #[error(transparent)]
    Ingest(#[from] crate::image::ingest::IngestError),

    #[error(transparent)]
    Bundle(#[from] crate::layout::archive::BundleError),

    #[error(transparent)]
    Meta(#[from] MetaError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Engine(#[from] EngineError),

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error(transparent)]
    Registry(#[from] RegistryError),

    #[error(transparent)]
    Web(#[from] crate::web::WebError),

    #[error(transparent)]
    DockerCli(#[from] crate::docker_cli::DockerCliError),

    // The use cases' own errors.
    #[error(
        "{archive}. The stream to the engine was stopped before its end, but the engine may have \
         kept what it had loaded: look with `docker images`, and remove it with `docker rmi IMAGE`"
    )]
    LoadedDamaged {
        #[source]
        archive: ArchiveError,
    },

    #[error("base URL `{url}` is not valid: {reason}")]
    BadUrl { url: String, reason: String },

    #[error(
        "`{}` loaded as image {found}, which is none of the archive's identities ({compared}) \
         and whose config (layers, creation time) is not the archive's, whose name says \
         {expected}: the file was renamed or is not what it claims",
        path.display()
    )]
    IdMismatch {
        path: PathBuf,
        expected: String,
        found: String,
        /// The identities compared: the config digest, the manifests' and indexes'.
        compared: String,
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
        Error::Io(IoError::new(path, source))
    }
}
