//! `man`: the manual page of toolbox (roff), on stdout.

use clap::{Args, CommandFactory};

use crate::cli::Cli;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};

/// `man`.
#[derive(Debug, Args)]
pub struct ManArgs {}

/// Writes the manual page (`toolbox man > toolbox.1; man ./toolbox.1`).
pub fn run(_: &ManArgs, _: &Context) -> Result<Status, Failure> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    crate::cli::printer::text(&String::from_utf8_lossy(&out))?;
    Ok(Status::Success)
}
