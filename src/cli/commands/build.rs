//! `build`: an image, through the engine.

use std::path::PathBuf;

use clap::Args;
use toolbox::engine::{Builder, SecretSpec};
use toolbox::ops::build::{self, BuildFlags};

use crate::cli::build_output;
use crate::cli::context::{self, Context};
use crate::cli::exit::{Failure, Status};
use crate::cli::printer;

/// `build IMAGE [--version V] [--context DIR] [--dockerfile F] [--build-arg K=V]... [--no-cache]
/// [--target STAGE] [--label K=V]... [--network default|none|host] [--pull] [--platform P]
/// [--secret id=ID,src=FILE|env=VAR]... [--builder buildkit|legacy] [--repository REPO]`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The image name used in archive names
    image: String,
    /// The version, which gives the tag
    #[arg(long, value_name = "V", default_value = "latest")]
    version: String,
    /// The build context [default: the config file's images.IMAGE.context]
    #[arg(long, value_name = "DIR")]
    context: Option<PathBuf>,
    /// The Dockerfile [default: the config file's images.IMAGE.dockerfile, else Dockerfile in
    /// the context]
    #[arg(long, value_name = "F")]
    dockerfile: Option<PathBuf>,
    /// A build argument (K alone takes the value of the environment variable K)
    #[arg(long = "build-arg", value_name = "K=V", value_parser = parse_build_arg)]
    build_args: Vec<(String, String)>,
    /// Do not use the engine's build cache
    #[arg(long)]
    no_cache: bool,
    /// Build this stage of a multi-stage Dockerfile [default: the config file's
    /// images.IMAGE.target, else the last stage]
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// A label to set on the image (beats the config file's images.IMAGE.labels)
    #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// The network of RUN steps [default: the config file's images.IMAGE.network, else the
    /// engine's default]
    #[arg(long, value_name = "NETWORK", value_parser = ["default", "none", "host"])]
    network: Option<String>,
    /// Ask the engine to refresh the base images first
    #[arg(long)]
    pull: bool,
    /// The platform to build for, os/arch[/variant] [default: the config file's
    /// images.IMAGE.platform, else the engine's]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    platform: Option<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (beats the
    /// config file's images.IMAGE.secrets of the same ID; BuildKit only)
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    secrets: Vec<SecretSpec>,
    /// The builder [default: DOCKER_BUILDKIT (1: buildkit, 0: legacy), else BuildKit when the
    /// engine offers it]
    #[arg(long, value_name = "BUILDER", value_parser = ["buildkit", "legacy"])]
    builder: Option<String>,
    /// The engine repository to tag [default: the config file's images.IMAGE.repository,
    /// else IMAGE]
    #[arg(long, value_name = "REPO")]
    repository: Option<String>,
}

/// The builder `--builder` names, else the one `DOCKER_BUILDKIT` asks for (as the docker
/// CLI reads it), else none (the engine's offer decides).
fn builder(flag: Option<&str>) -> Result<Option<Builder>, Failure> {
    if let Some(name) = flag {
        return name.parse().map(Some).map_err(Failure::usage_text);
    }
    match std::env::var("DOCKER_BUILDKIT") {
        Ok(value) => match Builder::from_docker_buildkit(&value) {
            Some(builder) => Ok(Some(builder)),
            None => Err(Failure::usage_text(format!(
                "DOCKER_BUILDKIT=`{value}` is not a boolean: use 1 (BuildKit) or 0 (legacy), \
                 or --builder buildkit|legacy"
            ))),
        },
        Err(_) => Ok(None),
    }
}

/// Builds the image, streaming the engine's log to stderr, and prints its full ID.
pub fn run(args: &BuildArgs, cx: &Context) -> Result<Status, Failure> {
    let settings = cx.settings()?;
    let flags = BuildFlags {
        context: args.context.clone(),
        dockerfile: args.dockerfile.clone(),
        build_args: args.build_args.clone(),
        repository: args.repository.clone(),
        no_cache: args.no_cache,
        target: args.target.clone(),
        labels: args.labels.clone(),
        network: args.network.clone(),
        pull: args.pull,
        platform: args.platform.clone(),
        builder: builder(args.builder.as_deref())?,
        secrets: args.secrets.clone(),
    };
    let spec = build::spec(
        &args.image,
        &args.version,
        &flags,
        &settings.image(&args.image),
    )
    .map_err(|e| match e {
        // An image, version or repository that cannot give a reference is wrong usage.
        build::Error::Reference(_) | build::Error::BadSecret { .. } => Failure::usage(e),
        other => other.into(),
    })?;
    let id = context::runtime()?.block_on(async {
        let engine = cx.connect(&settings).await?;
        let upload = cx.reporter(&format!("sending the context of {}", args.image));
        let mut output = build_output::for_mode(cx.progress_mode(), &args.image);
        let built = engine.build(&spec, output.as_mut(), upload).await;
        drop(output);
        Ok::<_, Failure>(built?)
    })?;
    printer::lines([id])?;
    Ok(Status::Success)
}

/// `--label K=V` (or `K` alone, for an empty value, as docker takes it).
fn parse_label(arg: &str) -> Result<(String, String), BadBuildArg> {
    match arg.split_once('=') {
        Some(("", _)) => Err(BadBuildArg::NoName(arg.to_string())),
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None if arg.is_empty() => Err(BadBuildArg::NoName(arg.to_string())),
        None => Ok((arg.to_string(), String::new())),
    }
}

/// `--platform os/arch[/variant]`.
fn parse_platform(arg: &str) -> Result<String, toolbox::oci::PlatformError> {
    toolbox::oci::Platform::parse(arg).map(|_| arg.to_string())
}

/// `K=V`, or `K` alone for the value of the environment variable `K`.
fn parse_build_arg(arg: &str) -> Result<(String, String), BadBuildArg> {
    match arg.split_once('=') {
        Some(("", _)) => Err(BadBuildArg::NoName(arg.to_string())),
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => std::env::var(arg)
            .map(|v| (arg.to_string(), v))
            .map_err(|_| BadBuildArg::NoValue(arg.to_string())),
    }
}

/// A `--build-arg` that names no argument or gives it no value.
#[derive(Debug, thiserror::Error)]
enum BadBuildArg {
    #[error("`{0}` has no name before `=`")]
    NoName(String),
    #[error("`{0}` is not K=V, and no environment variable {0} is set")]
    NoValue(String),
}
