//! `inspect`: what an archive holds, from the archive alone.

use clap::Args;
use toolbox::image;

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `inspect ARCHIVE|IMAGE[:VERSION]|ID-PREFIX [--json]`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An archive file, IMAGE[:VERSION] (its latest archive), or an image ID or a prefix of
    /// one (at least 4 hex digits)
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]|ID-PREFIX")]
    target: String,
    /// Print JSON on stdout (`docker inspect`'s field names)
    #[arg(long)]
    json: bool,
}

/// Prints the image's facts, one per line, or as `docker inspect` would.
pub fn run(args: &InspectArgs, cx: &Context) -> Result<Status, Failure> {
    let archive = cx.select(&args.target, &[], "inspect")?;
    let info = image::inspect(&archive)?;
    if args.json {
        printer::json(&info.docker_json(&archive))?;
    } else {
        printer::text(&output::inspect_text(&info, &archive))?;
    }
    Ok(Status::Success)
}
