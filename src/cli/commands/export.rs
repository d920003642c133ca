//! `export`: versions as one OCI image layout tar, whole (a bundle) or against a base (a delta).

use std::path::PathBuf;

use clap::Args;
use toolbox::image::ingest::LayerCompression;
use toolbox::layout::archive::BundleFormat;
use toolbox::ops::export::{self, ExportRequest};

use crate::cli::context::Context;
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `export IMAGE[:VERSION]... -o FILE [--since IMAGE[:VERSION]...] [--json]`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The versions to write: IMAGE[:VERSION] (its latest archive), or archive files
    #[arg(value_name = "IMAGE[:VERSION]", required = true)]
    targets: Vec<String>,
    /// The file to write: FILE.tar, or FILE.tar.zst (compressed with zstd)
    #[arg(short = 'o', long = "output", value_name = "FILE", required = true)]
    output: PathBuf,
    /// Leave out the blobs these versions hold (a delta, for a store that holds them)
    #[arg(long, value_name = "IMAGE[:VERSION]", num_args = 1..)]
    since: Vec<String>,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Writes the tar and prints its path and size.
pub fn run(args: &ExportArgs, cx: &Context) -> Result<Status, Failure> {
    BundleFormat::of(&args.output).map_err(|e| Failure::usage(toolbox::Error::from(e)))?;
    let select = |targets: &[String]| -> Result<Vec<_>, Failure> {
        targets
            .iter()
            .map(|t| cx.select(t, &[], "export").map_err(Failure::from))
            .collect()
    };
    let request = ExportRequest {
        images: select(&args.targets)?,
        since: select(&args.since)?,
        dest: args.output.clone(),
        // gzip: the layers every engine the bundle may meet loads (Docker 20.10 has no zstd).
        layers: LayerCompression::default(),
    };
    let reporter = cx.reporter(&format!("exporting {}", args.output.display()));
    let done = export::export(&request, reporter)?;
    let json = serde_json::json!({
        "path": output::path_json(&done.path),
        "bytes": done.bytes,
        "images": done.images,
        "base": done.base,
        "blobs": done.blobs,
        "left_out": done.left_out,
    });
    printer::show(args.json, &json, |_| {
        let base = if done.base.is_empty() {
            String::new()
        } else {
            format!(
                "; {} blobs of {} left out",
                done.left_out,
                done.base.join(", ")
            )
        };
        format!(
            "{}: {} bytes ({}), {} images, {} blobs{base}\n",
            output::path_text(&done.path),
            done.bytes,
            output::human_size(done.bytes),
            done.images.len(),
            done.blobs
        )
    })?;
    Ok(Status::Success)
}
