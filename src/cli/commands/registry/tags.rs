//! `registry tags`: the tags of a repository.

use clap::Args;
use toolbox::registry::{self, Registry};

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `registry tags HOST[:PORT]/REPO [registry flags] [--json]`.
#[derive(Debug, Args)]
pub struct TagsArgs {
    #[arg(value_name = "REPO-REF")]
    repository: String,
    #[command(flatten)]
    access: RegistryArgs,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Prints the tags, one a line, or a JSON list.
pub fn run(args: &TagsArgs, _: &Context) -> Result<Status, Failure> {
    let runtime = context::runtime()?;
    let reference = registry::parse_reference(&args.repository)?;
    let registry = Registry::for_reference(&reference, &args.access.access()?)?;
    let tags = runtime.block_on(registry::tags(&registry, &reference))?;
    printer::show(args.json, &tags, |t| output::lines(t))?;
    Ok(Status::Success)
}
