//! `registry check`: whether a manifest and every blob it names are in the registry.

use clap::Args;
use toolbox::registry::{self, Registry};

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `registry check REF [registry flags] [--json]`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    access: RegistryArgs,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Prints `REF: ok (...)`, or one line per missing blob and exit 1.
pub fn run(args: &CheckArgs, _: &Context) -> Result<Status, Failure> {
    let runtime = context::runtime()?;
    let parsed = registry::parse_reference(&args.reference)?;
    let registry = Registry::for_reference(&parsed, &args.access.access()?)?;
    let checked = runtime.block_on(registry::check(&registry, &parsed))?;
    let reference = &args.reference;
    printer::show(args.json, &checked, |checked| {
        if checked.missing.is_empty() {
            format!(
                "{reference}: ok ({} blobs, manifest {})\n",
                checked.blobs, checked.digest
            )
        } else {
            checked
                .missing
                .iter()
                .map(|d| format!("{reference}: missing blob {d}\n"))
                .collect()
        }
    })?;
    Ok(if checked.missing.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}
