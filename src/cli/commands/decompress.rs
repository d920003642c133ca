//! `decompress`: a `.zip` (or `.zst`) archive back into a `.docker`.

use clap::Args;
use toolbox::{Format, ops};

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `decompress ARCHIVE|IMAGE[:VERSION]`.
#[derive(Debug, Args)]
pub struct DecompressArgs {
    /// An archive file, or IMAGE[:VERSION] (its latest compressed archive)
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
    target: String,
}

/// Decompresses the archive and prints the new archive's path.
pub fn run(args: &DecompressArgs, cx: &Context) -> Result<Status, Failure> {
    let lock = cx.lock_for(&args.target, &cx.settings()?.artifacts_dir)?;
    let src = cx.select(&args.target, &[Format::Zip, Format::Zst], "decompress")?;
    let reporter = cx.reporter(&format!("decompressing {}", src.file_name()));
    let dest = ops::compress::decompress(lock.as_ref(), &src, reporter.as_ref())?;
    printer::paths([dest.as_path()])?;
    Ok(Status::Success)
}
