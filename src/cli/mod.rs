//! The command line: the global flags, one variant per command, and a dispatch of one line
//! per command. Each command's arguments and work live in `commands`.

mod args;
mod build_output;
mod commands;
mod context;
mod exit;
mod output;
mod printer;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand};
use toolbox::config::ProgressMode;
use toolbox::lock::Wait;

use commands::registry::RegistryCommand;
use commands::{
    build, clean, completions, compress, config, convert, decompress, df, export, extract, images,
    import, inspect, is_dirty, latest, load, login, man, parse, pull, push, registry, update_image,
    verify,
};
use context::Context;
use exit::{Failure, Status};

/// Keeps Docker images as archive files in an artifacts directory.
///
/// Archives are named <image>_<version>_<id>.<format>, where <id> is the first 12 hex digits of
/// the image ID and <format> is `docker` (a `docker save` tar), `zip` (that tar as a ZIP's one
/// entry) or `zst` (that tar, compressed with zstd).
#[derive(Debug, Parser)]
#[command(name = "toolbox", version)]
pub(crate) struct Cli {
    /// The config file [default: config/toolbox.yaml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The artifacts directory [default: $TOOLBOX_ARTIFACTS_DIR, else the config file's
    /// artifacts_dir, else ./artifacts]
    #[arg(long, global = true, value_name = "DIR")]
    basedir: Option<PathBuf>,

    /// When another run holds the artifacts directory's lock, fail at once instead of waiting
    /// (commands that change the directory: update-image, compress, decompress, clean)
    #[arg(long, global = true)]
    no_wait: bool,

    /// How long work shows its progress on stderr: auto (a bar on a terminal, else nothing),
    /// bar, plain (a line about every 10 % or 10 s, for logs) or none [default: the config
    /// file's progress, else auto]
    #[arg(
        long,
        global = true,
        value_name = "MODE",
        value_parser = clap::builder::PossibleValuesParser::new(ProgressMode::NAMES)
            .try_map(|s| s.parse::<ProgressMode>()),
    )]
    progress: Option<ProgressMode>,

    /// The Docker engine's address: unix:///PATH, tcp://HOST:PORT, https://HOST:PORT or
    /// ssh://[USER@]HOST[:PORT][/SOCKET] [default: --context, else DOCKER_HOST, else
    /// DOCKER_CONTEXT, else the docker CLI's current context, else the config file's
    /// docker_host, else unix:///var/run/docker.sock]
    #[arg(short = 'H', long, global = true, value_name = "ADDRESS")]
    host: Option<String>,

    /// The docker context whose engine to use (from the docker CLI's context store; before
    /// the command: `toolbox --context ci build …`)
    #[arg(long = "context", value_name = "NAME")]
    docker_context: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the parts of archive names
    Parse(parse::ParseArgs),
    /// Print `dirty` (exit 0) or `clean` (exit 1) for a version
    IsDirty(is_dirty::IsDirtyArgs),
    /// List archives, by image, latest first
    Images(images::ImagesArgs),
    /// Show what an archive holds, from the archive alone (no engine)
    Inspect(inspect::InspectArgs),
    /// Print the latest archive of each image
    Latest(latest::LatestArgs),
    /// Print the deploy configuration of the latest archives (YAML, or JSON with --json)
    Config(config::ConfigArgs),
    /// Remove old archives, keeping the latest ones of each image
    Clean(clean::CleanArgs),
    /// Turn a .docker archive into a .zip (or .zst)
    Compress(compress::CompressArgs),
    /// Turn a .zip (or .zst) archive back into a .docker
    Decompress(decompress::DecompressArgs),
    /// Turn archives into another format in place: into the layer store (ref) or out of it
    Convert(convert::ConvertArgs),
    /// Show the bytes the archives take on disk, per image, and as full copies
    Df(df::DfArgs),
    /// Write versions as one OCI image layout tar: a bundle `docker load` reads, or with
    /// --since a delta without the blobs of versions the other store holds
    Export(export::ExportArgs),
    /// Add the versions of a tar `export` wrote to the layer store, as .ref archives
    Import(import::ImportArgs),
    /// Write an image's root filesystem into a directory, applying its layers in order
    Extract(extract::ExtractArgs),
    /// Build an image through the engine and print its full ID
    Build(build::BuildArgs),
    /// Save the engine's image into the artifacts directory, when its ID changed
    UpdateImage(update_image::UpdateImageArgs),
    /// Check archives fully: container, tar, manifest, image ID, layer digests
    Verify(verify::VerifyArgs),
    /// Push an archive to a registry (no engine) and print the manifest digest
    Push(push::PushArgs),
    /// Pull an image from a registry (no engine) into the artifacts directory
    Pull(pull::PullArgs),
    /// Log in to a registry: check the credentials, keep them as the docker CLI does
    Login(login::LoginArgs),
    /// Log out of a registry: forget its credentials
    Logout(login::LogoutArgs),
    /// Registry commands: tags, catalog, delete, copy, check
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Load an archive into the engine, checking its image ID
    Load(load::LoadArgs),
    /// Print the shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff)
    Man(man::ManArgs),
}

/// Parses the arguments, runs the command, and turns the outcome into an exit code:
/// 0 success, 1 failure, 2 wrong usage.
pub fn run() -> ExitCode {
    progress::on_interrupt();
    toolbox::warn::set_handler(|message| printer::warning(&message));
    match Cli::try_parse() {
        Ok(cli) => exit::code(dispatch(cli)),
        Err(usage) => exit::usage(&usage),
    }
}

fn dispatch(cli: Cli) -> Result<Status, Failure> {
    let cx = Context {
        config: cli.config,
        basedir: cli.basedir,
        wait: if cli.no_wait { Wait::No } else { Wait::Yes },
        progress: cli.progress,
        host: cli.host,
        docker_context: cli.docker_context,
    };
    match &cli.command {
        Command::Parse(args) => parse::run(args, &cx),
        Command::IsDirty(args) => is_dirty::run(args, &cx),
        Command::Images(args) => images::run(args, &cx),
        Command::Inspect(args) => inspect::run(args, &cx),
        Command::Latest(args) => latest::run(args, &cx),
        Command::Config(args) => config::run(args, &cx),
        Command::Clean(args) => clean::run(args, &cx),
        Command::Compress(args) => compress::run(args, &cx),
        Command::Decompress(args) => decompress::run(args, &cx),
        Command::Convert(args) => convert::run(args, &cx),
        Command::Df(args) => df::run(args, &cx),
        Command::Export(args) => export::run(args, &cx),
        Command::Import(args) => import::run(args, &cx),
        Command::Extract(args) => extract::run(args, &cx),
        Command::Build(args) => build::run(args, &cx),
        Command::UpdateImage(args) => update_image::run(args, &cx),
        Command::Verify(args) => verify::run(args, &cx),
        Command::Push(args) => push::run(args, &cx),
        Command::Login(args) => login::login(args, &cx),
        Command::Logout(args) => login::logout(args, &cx),
        Command::Pull(args) => pull::run(args, &cx),
        Command::Registry(command) => registry::run(command, &cx),
        Command::Load(args) => load::run(args, &cx),
        Command::Completions(args) => completions::run(args, &cx),
        Command::Man(args) => man::run(args, &cx),
    }
}
