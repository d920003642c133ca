//! `convert`: archives into another format in place (into the layer store, or out of it).

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use toolbox::Format;
use toolbox::config::CompressFormat;
use toolbox::ops::convert::{self, ConvertRequest};

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `convert ARCHIVE|IMAGE[:VERSION]... --to docker|zip|zst|ref [--keep]`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Archive files, or IMAGE[:VERSION] (its latest archive)
    #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]", required = true)]
    targets: Vec<String>,
    /// The format to write: docker (a `docker save` tar), zip, zst, or ref (into the layer
    /// store of the artifacts directory)
    #[arg(long, value_name = "FORMAT", required = true, value_parser = PossibleValuesParser::new(["docker", "zip", "zst", "ref"]).map(|s| Format::from_extension(&s)))]
    to: Format,
    /// Keep the source archive
    #[arg(long)]
    keep: bool,
}

/// Converts each archive and prints the path of what it became.
pub fn run(args: &ConvertArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let compression = match &args.to {
        Format::Zip => Some(settings.compression(Some(CompressFormat::Zip), None)?),
        Format::Zst => Some(settings.compression(Some(CompressFormat::Zst), None)?),
        _ => None,
    };
    let request = ConvertRequest {
        to: args.to.clone(),
        compression,
        layers: settings.layer_compression.unwrap_or_default().compression(),
        keep: args.keep,
    };
    for target in &args.targets {
        let lock = cx.lock_for(target, &settings.artifacts_dir)?;
        let src = cx.select(target, &[], "convert")?;
        let reporter = cx.reporter(&format!("converting {}", src.file_name()));
        let done = convert::convert(lock.as_ref(), &src, &request, reporter)?;
        if !done.written {
            printer::notice(&format_args!(
                "`{}` is a {} archive already: nothing to do",
                src.path.display(),
                args.to
            ));
        }
        printer::paths([done.path.as_path()])?;
    }
    Ok(Status::Success)
}
