//! The use cases: one job each — take the lock, open the store, connect, stream, commit, report.
//! They are what the command line calls; everything below them knows nothing of them.

pub mod compress;
pub mod deploy;
pub mod facts;
pub mod load;
pub mod update;

pub use facts::open_store;
