//! `registry delete`: the manifest a reference names.

use clap::Args;
use toolbox::registry::{self, Registry};

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `registry delete REF [registry flags]`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    access: RegistryArgs,
}

/// Deletes the manifest (a tag is resolved to its digest) and prints its digest.
pub fn run(args: &DeleteArgs, _: &Context) -> Result<Status, Failure> {
    let runtime = context::runtime()?;
    let reference = registry::parse_reference(&args.reference)?;
    let registry = Registry::for_reference(&reference, &args.access.access()?)?;
    let digest = runtime.block_on(registry::delete(&registry, &reference))?;
    printer::text(&format!("deleted {digest}\n"))?;
    Ok(Status::Success)
}
