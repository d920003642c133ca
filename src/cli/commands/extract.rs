//! `extract`: an image's root filesystem into a directory.

use std::path::PathBuf;

use clap::Args;
use toolbox::image::extract;

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `extract ARCHIVE|IMAGE[:VERSION] DIR [--path P]`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// An archive file, IMAGE[:VERSION] (its latest archive), or an image ID prefix
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    target: String,
    /// The directory to write into (empty or missing)
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Extract only this file or folder of the image
    #[arg(long, value_name = "P")]
    path: Option<String>,
}

/// Applies the layers in order, warns about each entry skipped, and says how many it wrote.
pub fn run(args: &ExtractArgs, cx: &Context) -> Result<Status, Failure> {
    let archive = cx.select(&args.target, &[], "extract")?;
    let done = extract::extract(&archive, &args.dir, args.path.as_deref())?;
    for line in &done.skipped {
        printer::warning(&format_args!("skipped {line}"));
    }
    printer::text(&format!(
        "extracted {} entries of {} into {}\n",
        done.entries,
        archive.file_name(),
        args.dir.display()
    ))?;
    Ok(Status::Success)
}
