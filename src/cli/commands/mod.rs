//! One module per command: its arguments, and a `run` that parses them, calls the library and
//! renders the outcome.

pub mod build;
pub mod clean;
pub mod completions;
pub mod compress;
pub mod config;
pub mod convert;
pub mod decompress;
pub mod df;
pub mod export;
pub mod extract;
pub mod images;
pub mod import;
pub mod inspect;
pub mod is_dirty;
pub mod latest;
pub mod load;
pub mod login;
pub mod man;
pub mod parse;
pub mod pull;
pub mod push;
pub mod registry;
pub mod update_image;
pub mod verify;
