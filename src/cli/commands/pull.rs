//! `pull`: an image from a registry into the artifacts directory, without an engine; or an
//! archive from a web server that serves an artifacts directory.

use clap::Args;
use toolbox::oci::Platform;
use toolbox::ops;
use toolbox::registry::{self, PullRequest};

use crate::cli::args::{CompressionArgs, RegistryArgs};
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::{output, printer};

/// `pull REF [--image NAME] [--version V] [--platform OS/ARCH] [--store | --compress
/// [--format F] [--level N]] [registry flags] [--json]`, or `pull URL [--retries N] [--ca-cert
/// FILE] [--json]`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG|@DIGEST], or the http:// or https:// URL of an archive on a web
    /// server (a .ref archive comes with only the blobs the layer store lacks)
    #[arg(value_name = "REF|URL")]
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
    #[arg(long, conflicts_with = "store")]
    compress: bool,
    /// Write a .ref archive into the layer store, downloading only the blobs it lacks
    #[arg(long)]
    store: bool,
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
    if is_url(&args.reference) {
        return run_url(args, cx);
    }
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
    if args.store {
        let pulled = context::runtime()?.block_on(ops::pull::store::pull_into_store(
            &lock, &request, &access, reporter,
        ))?;
        return show_downloaded(&pulled, args.json);
    }
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

/// Whether `reference` is a web server's URL rather than a registry reference.
fn is_url(reference: &str) -> bool {
    let lower = reference.get(..8).unwrap_or(reference).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// `pull URL`: the archive from a web server.
fn run_url(args: &PullArgs, cx: &Context) -> Result<Status, Failure> {
    let unused = [
        ("--image", args.image.is_some()),
        ("--version", args.version.is_some()),
        ("--platform", args.platform.is_some()),
        ("--compress", args.compress),
        ("--store", args.store),
        ("--username", args.access.username.is_some()),
        ("--insecure", args.access.insecure),
    ];
    if let Some((flag, _)) = unused.iter().find(|(_, given)| *given) {
        return Err(Failure::usage_text(format!(
            "{flag} applies to a registry reference, not to a URL: a URL's file name already \
             names the archive (and a .ref URL writes into the layer store)"
        )));
    }
    let settings = cx.settings()?;
    let url = toolbox::web::parse_url(&args.reference)
        .map_err(|e| Failure::usage(toolbox::Error::from(e)))?;
    ops::pull::web::archive_name(&url).map_err(Failure::usage)?;
    let web = toolbox::web::Web::new(&toolbox::web::WebAccess {
        ca_cert: args.access.ca_cert.clone(),
        retries: args.access.retries,
        notify: Some(std::sync::Arc::new(|message: &str| {
            printer::warning(&message)
        })),
    })
    .map_err(toolbox::Error::from)?;
    let lock = cx.lock_for_writing(&settings.artifacts_dir)?;
    let reporter = cx.reporter(&format!("pulling {}", args.reference));
    let pulled =
        context::runtime()?.block_on(ops::pull::web::pull_url(&lock, &url, &web, reporter))?;
    show_downloaded(&pulled, args.json)
}

/// Says what `pull URL` or `pull REF --store` did: the archive's path and the bytes downloaded.
fn show_downloaded(pulled: &ops::pull::Downloaded, json: bool) -> Result<Status, Failure> {
    let out = serde_json::json!({
        "path": output::path_json(&pulled.path),
        "image": pulled.name.image,
        "version": pulled.name.version,
        "id": pulled.name.id,
        "format": pulled.name.format,
        "written": pulled.written,
        "downloaded": pulled.downloaded,
        "reused": pulled.reused,
    });
    printer::show(json, &out, |_| {
        let what = if pulled.written {
            format!(
                "downloaded {}{}",
                output::size_in_words(pulled.downloaded),
                if pulled.reused > 0 {
                    format!(
                        ", reused {} already in the store",
                        output::size_in_words(pulled.reused)
                    )
                } else {
                    String::new()
                }
            )
        } else {
            output::written(false).to_string()
        };
        format!("{}: {what}\n", output::path_text(&pulled.path))
    })?;
    Ok(Status::Success)
}
