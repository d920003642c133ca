//! `config`: the deploy configuration of the latest archives.

use clap::Args;
use toolbox::ops::deploy;

use crate::cli::args::Selection;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `config [--baseurl URL] [IMAGE...] [--allow-dirty] [--json]`.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The URL the archives are served under (http:// or https://) [default: the config
    /// file's baseurl]
    #[arg(long, value_name = "URL")]
    baseurl: Option<String>,
    #[command(flatten)]
    selection: Selection,
}

/// Prints the deploy configuration as YAML, or JSON with `--json`.
pub fn run(args: &ConfigArgs, cx: &Context) -> Result<Status, Failure> {
    let base = match &args.baseurl {
        Some(url) => url.clone(),
        None => cx.settings()?.baseurl.clone().ok_or_else(|| {
            Failure::usage_text(
                "no base URL: pass --baseurl URL, or set `baseurl: URL` in the config file",
            )
        })?,
    };
    let store = cx.open()?;
    let sel = &args.selection;
    let names = store.resolve_images(&sel.images)?;
    let (deployment, skipped) = deploy::deployment(&store, &names, &base, sel.rule())?;
    printer::skipped(&skipped);
    if sel.json {
        printer::json(&deployment)?;
    } else {
        printer::text(&serde_yaml::to_string(&deployment)?)?;
    }
    Ok(Status::Success)
}
