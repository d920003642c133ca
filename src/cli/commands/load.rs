//! `load`: an archive into the engine, sending only the layers the engine lacks.

use clap::Args;
use serde::Serialize;
use toolbox::ops::load;

use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::output::size_in_words;
use crate::cli::printer;

/// `load ARCHIVE|IMAGE[:VERSION] [--json]`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// An archive file, or IMAGE[:VERSION] (its latest archive)
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    target: String,
    /// Print the loaded reference, the engine's ID and the bytes sent as JSON
    #[arg(long)]
    json: bool,
}

/// What `load --json` prints.
#[derive(Serialize)]
struct LoadJson<'a> {
    image: &'a str,
    id: &'a str,
    /// The bytes of the tar sent to the engine.
    sent: u64,
    /// The bytes of the whole image's tar.
    total: u64,
}

/// Loads the archive, checking the image ID the engine reports, and prints the reference and
/// how much was sent.
pub fn run(args: &LoadArgs, cx: &Context) -> Result<Status, Failure> {
    let archive = cx.select(&args.target, &[], "load")?;
    let settings = cx.settings()?;
    // The layer stores and the image's other archives say which blobs the engine holds; a
    // directory that cannot be read only makes the load whole.
    let store = cx.open_quietly().ok();
    let sources = load::Sources::of(store.as_ref(), &archive);
    let reporter = cx.reporter(&format!("loading {}", archive.file_name()));
    let loaded = context::runtime()?.block_on(async {
        let engine = cx.connect(&settings).await?;
        load::load(&engine, &archive, sources, reporter).await
    })?;
    if args.json {
        printer::json(&LoadJson {
            image: &loaded.reference,
            id: &loaded.id,
            sent: loaded.sent,
            total: loaded.total,
        })?;
        return Ok(Status::Success);
    }
    // As `docker load` says it, with what was sent, then the ID the engine gave the image.
    printer::lines([
        format!(
            "Loaded image: {} (sent {} of {}; the engine had {} of {} layers)",
            loaded.reference,
            size_in_words(loaded.sent),
            size_in_words(loaded.total),
            loaded.held,
            loaded.layers
        ),
        format!("Loaded image ID: {}", loaded.id),
    ])?;
    Ok(Status::Success)
}
