//! toolbox keeps Docker images as archive files in an artifacts directory, for release
//! pipelines.
//!
//! An archive is named `<image>_<version>_<id>.<format>` ([`name::ArchiveName`]); the
//! [`store::Store`] finds them in a directory and decides which is the latest
//! ([`store::LatestRule`]); [`codec`] turns a `docker save` tar into a ZIP and back, streaming;
//! [`commit::AtomicFile`] makes sure nothing half written ever carries an archive's name.

pub mod codec;
pub mod commit;
pub mod config;
pub mod deploy;
pub mod engine;
pub mod error;
pub mod extract;
pub mod image;
pub mod inspect;
pub mod load;
pub mod lock;
pub mod name;
pub mod oci;
pub mod ops;
pub mod pipe;
pub mod progress;
pub mod registry;
pub mod store;
pub mod update;
pub mod version;

pub use error::{Error, Result};
pub use name::{ArchiveName, Format};
pub use store::{Archive, LatestRule, Store, Target};
