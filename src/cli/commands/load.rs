//! `load`: an archive into the engine.

use clap::Args;
use toolbox::ops::load;

use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `load ARCHIVE|IMAGE[:VERSION]`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// An archive file, or IMAGE[:VERSION] (its latest archive)
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    target: String,
}

/// Loads the archive, checking the image ID the engine reports, and prints the reference.
pub fn run(args: &LoadArgs, cx: &Context) -> Result<Status, Failure> {
    let archive = cx.select(&args.target, &[], "load")?;
    let settings = cx.settings()?;
    let reporter = cx.reporter(&format!("loading {}", archive.file_name()));
    let loaded = context::runtime()?.block_on(async {
        let engine = cx.connect(&settings).await?;
        load::load(&engine, &archive, reporter).await
    })?;
    // As `docker load` says it, then the ID the engine gave the image.
    printer::lines([
        format!("Loaded image: {}", loaded.reference),
        format!("Loaded image ID: {}", loaded.id),
    ])?;
    Ok(Status::Success)
}
