//! `push`: an archive to a registry, without an engine.

use clap::Args;
use toolbox::ops::push;
use toolbox::registry::{self, Registry};

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{printer, progress};

/// `push ARCHIVE|IMAGE[:VERSION] REF [registry flags] [--json]`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// An archive file, IMAGE[:VERSION] (its latest archive), or an image ID prefix
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    target: String,
    /// HOST[:PORT]/REPO[:TAG] [default tag: the archive's version]
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    access: RegistryArgs,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Pushes the archive and prints the manifest digest.
pub fn run(args: &PushArgs, cx: &Context) -> Result<Status, Failure> {
    let archive = cx.select(&args.target, &[], "push")?;
    let reference = push::reference(&args.reference, &archive)?;
    let registry = Registry::for_reference(&reference, &args.access.access()?)?;
    let reporter = progress::reporter(&format!("pushing {}", archive.file_name()));
    let pushed =
        context::runtime()?.block_on(registry::push(&registry, &archive, &reference, reporter))?;
    printer::show(args.json, &pushed, |p| format!("{}\n", p.digest))?;
    Ok(Status::Success)
}
