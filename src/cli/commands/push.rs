//! `push`: an archive to a registry, without an engine.

use clap::Args;
use toolbox::config::Environment;
use toolbox::ops::push;

use crate::cli::args::RegistryArgs;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

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
    let access = args.access.access()?;
    let cache = Environment::from_process().pushed_layers_file();
    let reporter = cx.reporter(&format!("pushing {}", archive.file_name()));
    let pushed = context::runtime()?.block_on(push::push(
        &archive,
        &args.reference,
        &access,
        cache.as_deref(),
        reporter,
    ))?;
    printer::show(args.json, &pushed, |p| format!("{}\n", p.digest))?;
    Ok(Status::Success)
}
