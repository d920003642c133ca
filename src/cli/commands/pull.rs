//! `pull`: an image from a registry into the artifacts directory, without an engine.

use clap::Args;
use toolbox::oci::Platform;
use toolbox::ops;
use toolbox::registry::{self, PullRequest};

use crate::cli::args::{CompressionArgs, RegistryArgs};
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `pull REF [--image NAME] [--version V] [--platform OS/ARCH] [--compress [--format F]
/// [--level N]] [registry flags] [--json]`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG|@DIGEST]
    #[arg(value_name = "REF")]
    reference: String,
    /// The image name of the archive [default: the repository's last component]
    #[arg(long, value_name = "NAME")]
    image: Option<String>,
    /// The version of the archive [default: the tag]
    #[arg(long, value_name = "V")]
    version: Option<String>,
    /// The platform to choose from a manifest list [default: the host's]
    #[arg(long, value_name = "OS/ARCH")]
    platform: Option<String>,
    /// Write a compressed archive
    #[arg(long)]
    compress: bool,
    #[command(flatten)]
    compression: CompressionArgs,
    #[command(flatten)]
    access: RegistryArgs,
    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

/// Pulls the image under the artifacts directory's lock and says what was written.
pub fn run(args: &PullArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let compression = args.compression.resolve(&settings)?;
    let request = PullRequest {
        reference: registry::parse_reference(&args.reference)?,
        image: args.image.clone(),
        version: args.version.clone(),
        platform: match &args.platform {
            Some(p) => Platform::parse(p)?,
            None => Platform::host(),
        },
        compress: args.compress.then_some(compression),
    };
    let access = args.access.access()?;
    let lock = cx.lock_for_writing(&settings.artifacts_dir)?;
    let reporter = cx.reporter(&format!("pulling {}", args.reference));
    let pulled =
        context::runtime()?.block_on(ops::pull::pull(&lock, &request, &access, reporter))?;
    let json = serde_json::json!({
        "path": output::path_json(&pulled.path),
        "image": pulled.name.image,
        "version": pulled.name.version,
        "id": pulled.name.id,
        "format": pulled.name.format,
        "digest": pulled.digest,
        "written": pulled.written,
    });
    printer::show(args.json, &json, |_| {
        format!(
            "{}: {}\n",
            output::path_text(&pulled.path),
            output::written(pulled.written)
        )
    })?;
    Ok(Status::Success)
}
