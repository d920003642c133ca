//! `registry catalog`: the repositories of a registry.

use clap::Args;
use toolbox::registry::{self, Registry};

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `registry catalog HOST[:PORT] [registry flags] [--json]`.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[arg(value_name = "HOST[:PORT]")]
    host: String,
    #[command(flatten)]
    access: RegistryArgs,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Prints the repositories, one a line, or a JSON list.
pub fn run(args: &CatalogArgs, _: &Context) -> Result<Status, Failure> {
    let runtime = context::runtime()?;
    let reference = registry::parse_reference(&format!("{}/catalog", args.host))?;
    let registry = Registry::for_reference(&reference, &args.access.access()?)?;
    let repositories = runtime.block_on(registry::catalog(&registry, &reference))?;
    printer::show(args.json, &repositories, |r| output::lines(r))?;
    Ok(Status::Success)
}
