//! Use cases: what a command does, built from the store, the codecs, the engine and registries.

pub mod build;
pub mod push;
pub mod verify;
