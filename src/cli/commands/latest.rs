//! `latest`: the latest archive of each image.

use std::collections::BTreeMap;

use clap::Args;

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::output::ArchiveJson;
use crate::cli::printer;

/// `latest [IMAGE...] [--allow-dirty] [--json]`.
#[derive(Debug, Args)]
pub struct LatestArgs {
    #[command(flatten)]
    selection: Selection,
}

/// Prints the path of each image's latest archive, or a JSON object keyed by image.
pub fn run(args: &LatestArgs, cx: &Context) -> Result<Status, Failure> {
    let store = cx.open()?;
    let sel = &args.selection;
    let found = store.latest_of(&store.resolve_images(&sel.images)?, sel.rule())?;
    printer::skipped(&found.skipped);
    let latest = found.chosen;
    if sel.json {
        let items: BTreeMap<&str, ArchiveJson> = latest
            .iter()
            .map(|(k, v)| (k.as_str(), (*v).into()))
            .collect();
        printer::json(&items)?;
    } else {
        printer::paths(latest.values().map(|a| a.path.as_path()))?;
    }
    Ok(Status::Success)
}
