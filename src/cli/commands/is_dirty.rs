//! `is-dirty`: whether a version is dirty, as text and as the exit code.

use clap::Args;
use toolbox::version;

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `is-dirty VERSION`.
#[derive(Debug, Args)]
pub struct IsDirtyArgs {
    #[arg(value_name = "VERSION", allow_hyphen_values = true)]
    version: String,
}

/// Prints `dirty` (exit 0) or `clean` (exit 1).
pub fn run(args: &IsDirtyArgs, _: &Context) -> Result<Status, Failure> {
    if version::is_dirty(&args.version) {
        printer::text("dirty\n")?;
        Ok(Status::Success)
    } else {
        printer::text("clean\n")?;
        Ok(Status::Failure)
    }
}
