//! The use cases: one job each — take the lock, open the store, connect, stream, commit, report.
//! Each puts the layers below together (the store, archives, the engine, a registry) for one
//! thing a user asks for; the command line only parses and renders. Nothing below imports them.

pub mod build;
pub mod clean;
pub mod compress;
pub mod convert;
pub mod deploy;
pub mod df;
pub mod export;
pub mod facts;
pub mod import;
pub mod load;
pub mod login;
pub mod pull;
pub mod push;
pub mod update;
pub mod verify;

pub use facts::{open_store, open_store_quietly};
