//! `compress`: a `.docker` archive into a `.zip` (or `.zst`).

use clap::Args;
use toolbox::{Format, ops};

use crate::cli::args::CompressionArgs;
use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `compress ARCHIVE|IMAGE[:VERSION] [--format FORMAT] [--level N]`.
#[derive(Debug, Args)]
pub struct CompressArgs {
    /// An archive file, or IMAGE[:VERSION] (its latest .docker archive)
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    target: String,
    #[command(flatten)]
    compression: CompressionArgs,
}

/// Compresses the archive and prints the new archive's path.
pub fn run(args: &CompressArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let compression = args.compression.resolve(&settings)?;
    let lock = cx.lock_for(&args.target, &settings.artifacts_dir)?;
    let src = cx.select(&args.target, &[Format::Docker], "compress")?;
    let reporter = cx.reporter(&format!("compressing {}", src.file_name()));
    let dest = ops::compress::compress(lock.as_ref(), &src, &compression, reporter.as_ref())?;
    printer::paths([dest.as_path()])?;
    Ok(Status::Success)
}
