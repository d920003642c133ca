//! `df`: the bytes the archives take on disk, and as full copies.

use clap::Args;
use toolbox::ops::df;

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::output::{self, Table};
use crate::cli::printer;

/// `df [IMAGE...] [--json]`.
#[derive(Debug, Args)]
pub struct DfArgs {
    #[command(flatten)]
    selection: Selection,
}

/// Prints a table (or JSON) of the bytes per image and in all.
pub fn run(args: &DfArgs, cx: &Context) -> Result<Status, Failure> {
    let store = cx.open()?;
    let images = store.resolve_images(&args.selection.images)?;
    let usage = df::usage(&store, &images);
    if args.selection.json {
        printer::json(&usage)?;
        return Ok(Status::Success);
    }
    let mut table = Table::new(vec!["IMAGE", "ARCHIVES", "ON DISK", "UNIQUE"]);
    for i in &usage.images {
        table.row(vec![
            i.image.clone(),
            i.archives.to_string(),
            output::human_size(i.on_disk),
            output::human_size(i.unique),
        ]);
    }
    let mut text = table.render();
    text.push_str(&format!(
        "total: {} on disk; {} as full copies\n",
        output::human_size(usage.on_disk),
        output::human_size(usage.as_full_copies)
    ));
    printer::text(&text)?;
    Ok(Status::Success)
}
