//! toolbox keeps Docker images as archive files in an artifacts directory, for release
//! pipelines.
//!
//! An archive is named `<image>_<version>_<id>.<format>` ([`name::ArchiveName`]); the
//! [`store::Store`] finds them in a directory and decides which is the latest
//! ([`store::LatestRule`]); [`codec`] turns a `docker save` tar into a ZIP and back, streaming;
//! [`commit::AtomicFile`] makes sure nothing half written ever carries an archive's name.

// Pure values.
pub mod digest;
pub mod ignore;
pub mod name;
pub mod oci;
pub mod timestamp;
pub mod version;
pub mod warn;
// Files.
pub mod archive;
pub mod backoff;
pub mod commit;
pub mod context;
pub mod docker_cli;
pub mod interrupt;
pub mod io_error;
pub mod layout;
pub mod lock;
pub mod pipe;
pub mod progress;
pub mod regular;
pub mod tls;
// Archive bodies, what is inside them, and what is remembered of that.
pub mod codec;
pub mod image;
pub mod meta;
// The artifacts directory and the latest rule.
pub mod store;
// Engines and registries.
pub mod engine;
pub mod registry;
pub mod web;
// Settings, and the use cases the command line calls.
pub mod config;
pub mod error;
pub mod ops;

pub use archive::Archive;
pub use error::{Error, Result};
pub use name::{ArchiveName, Format};
pub use store::{LatestRule, Store, Target};
