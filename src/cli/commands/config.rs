//! `config`: the deploy configuration of the latest archives.

use clap::Args;
use toolbox::ops::deploy;

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `config --baseurl URL [IMAGE...] [--allow-dirty] [--json]`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The URL the archives are served under
    #[arg(long, value_name = "URL")]
    baseurl: String,
    #[command(flatten)]
    selection: Selection,
}

/// Prints the deploy configuration as YAML, or JSON with `--json`.
pub fn run(args: &ConfigArgs, cx: &Context) -> Result<Status, Failure> {
    let store = cx.open()?;
    let sel = &args.selection;
    let names = store.resolve_images(&sel.images)?;
    let (deployment, skipped) = deploy::deployment(&store, &names, &args.baseurl, sel.rule())?;
    printer::skipped(&skipped);
    if sel.json {
        printer::json(&deployment)?;
    } else {
        printer::text(&serde_yaml::to_string(&deployment)?)?;
    }
    Ok(Status::Success)
}
