//! `registry copy`: an image (or manifest list) to another tag, repository or registry.

use clap::Args;
use toolbox::registry::{self, Registry};

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `registry copy SRC DST [registry flags]`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    #[arg(value_name = "SRC")]
    source: String,
    #[arg(value_name = "DST")]
    destination: String,
    #[command(flatten)]
    access: RegistryArgs,
}

/// Copies the image and prints the digest of what was copied.
pub fn run(args: &CopyArgs, _: &Context) -> Result<Status, Failure> {
    let runtime = context::runtime()?;
    let access = args.access.access()?;
    let src = registry::parse_reference(&args.source)?;
    let dst = registry::parse_reference(&args.destination)?;
    let src_registry = Registry::for_reference(&src, &access)?;
    let dst_registry = Registry::for_reference(&dst, &access)?;
    let digest = runtime.block_on(registry::copy(&src_registry, &src, &dst_registry, &dst))?;
    printer::lines([digest])?;
    Ok(Status::Success)
}
