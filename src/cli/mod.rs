//! The command line: argument definitions, one small function per command, and exit codes.

mod output;
mod progress;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::Serialize;
use toolbox::codec::Compression;
use toolbox::config::{CompressFormat, ConfigFile, Environment, Settings};
use toolbox::engine::{BuildSpec, Engine, PullPolicy};
use toolbox::image::extract;
use toolbox::lock::{DirLock, Wait};
use toolbox::ops::update::{self, UpdateRequest};
use toolbox::ops::{deploy, load};
use toolbox::registry::Registry;
use toolbox::{
    ArchiveName, Error, Format, LatestRule, Store, Target, image, ops, registry, store, version,
};

use output::{ArchiveJson, NameJson, Table};

/// Keeps Docker images as archive files in an artifacts directory.
///
/// Archives are named <image>_<version>_<id>.<format>, where <id> is the first 12 hex digits of
/// the image ID and <format> is `docker` (a `docker save` tar) or `zip` (that tar, compressed).
#[derive(Debug, Parser)]
#[command(name = "toolbox", version)]
struct Cli {
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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Selection {
    /// Images to act on (all when none is given)
    #[arg(value_name = "IMAGE")]
    images: Vec<String>,

    /// Let dirty versions (latest, dev, *.dirty, *+dirty, a.b.c.0) rank like clean ones
    #[arg(long)]
    allow_dirty: bool,

    /// Print JSON on stdout
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the parts of archive names
    Parse {
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Print `dirty` (exit 0) or `clean` (exit 1) for a version
    IsDirty {
        #[arg(value_name = "VERSION", allow_hyphen_values = true)]
        version: String,
    },
    /// List archives, by image, latest first
    Images {
        #[command(flatten)]
        selection: Selection,
        /// Show when each image was created (from its config)
        #[arg(long)]
        created: bool,
    },
    /// Show what an archive holds, from the archive alone (no engine)
    Inspect {
        /// An archive file, IMAGE[:VERSION] (its latest archive), or an image ID or a prefix of
        /// one (at least 4 hex digits)
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]|ID-PREFIX")]
        target: String,
        /// Print JSON on stdout (`docker inspect`'s field names)
        #[arg(long)]
        json: bool,
    },
    /// Print the latest archive of each image
    Latest(Selection),
    /// Print the deploy configuration of the latest archives (YAML, or JSON with --json)
    Config {
        /// The URL the archives are served under
        #[arg(long, value_name = "URL")]
        baseurl: String,
        #[command(flatten)]
        selection: Selection,
    },
    /// Remove old archives, keeping the latest ones of each image
    Clean {
        #[command(flatten)]
        selection: Selection,
        /// How many (version, id) pairs to keep per image
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        keep: u64,
        /// Print what would be removed, and remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Turn a .docker archive into a .zip (or .zst)
    Compress {
        /// An archive file, or IMAGE[:VERSION] (its latest .docker archive)
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        target: String,
        #[command(flatten)]
        compression: CompressionArgs,
    },
    /// Turn a .zip (or .zst) archive back into a .docker
    Decompress {
        /// An archive file, or IMAGE[:VERSION] (its latest compressed archive)
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        target: String,
    },
    /// Write an image's root filesystem into a directory, applying its layers in order
    Extract {
        /// An archive file, IMAGE[:VERSION] (its latest archive), or an image ID prefix
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        target: String,
        /// The directory to write into (empty or missing)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Extract only this file or folder of the image
        #[arg(long, value_name = "P")]
        path: Option<String>,
    },
    /// Build an image through the engine and print its full ID
    Build {
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
        /// The engine repository to tag [default: the config file's images.IMAGE.repository,
        /// else IMAGE]
        #[arg(long, value_name = "REPO")]
        repository: Option<String>,
    },
    /// Save the engine's image into the artifacts directory, when its ID changed
    UpdateImage {
        /// The image name used in archive names
        image: String,
        /// The version, which gives the tag
        #[arg(long, value_name = "V", default_value = "latest")]
        version: String,
        /// Remove every other archive of the image afterwards
        #[arg(long)]
        clean: bool,
        /// Write a compressed archive (turning an existing .docker of the same ID into one)
        #[arg(long)]
        compress: bool,
        #[command(flatten)]
        compression: CompressionArgs,
        /// When to pull the image first
        #[arg(long, value_name = "POLICY", value_enum, default_value_t = PullArg::Never)]
        pull: PullArg,
        /// The engine repository [default: the config file's images.IMAGE.repository, else IMAGE]
        #[arg(long, value_name = "REPO")]
        repository: Option<String>,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Check archives fully: container, tar, manifest, image ID, layer digests
    Verify {
        /// Archive files, or IMAGE[:VERSION] (its latest archive); all archives when none
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        targets: Vec<String>,
    },
    /// Push an archive to a registry (no engine) and print the manifest digest
    Push {
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
    },
    /// Pull an image from a registry (no engine) into the artifacts directory
    Pull {
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
    },
    /// Registry commands: tags, catalog, delete, copy, check
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Load an archive into the engine, checking its image ID
    Load {
        /// An archive file, or IMAGE[:VERSION] (its latest archive)
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        target: String,
    },
}

#[derive(Debug, Args)]
struct RegistryArgs {
    /// Talk plain HTTP to the registry (always done for loopback addresses)
    #[arg(long)]
    insecure: bool,
    /// A PEM file of CA certificates to trust besides the system's
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// The user name [default: the Docker config file's credentials for the registry]
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    username: Option<String>,
    /// Read the password for --username from stdin
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

impl RegistryArgs {
    fn access(&self) -> anyhow::Result<registry::Access> {
        let credentials = match &self.username {
            Some(user) => {
                let mut password = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)?;
                let password = password.trim_end_matches(['\n', '\r']).to_string();
                if password.is_empty() {
                    anyhow::bail!("--password-stdin: stdin gave no password");
                }
                Some((user.clone(), password))
            }
            None => None,
        };
        Ok(registry::Access {
            insecure: self.insecure,
            ca_cert: self.ca_cert.clone(),
            credentials,
            docker_config: Environment::from_process().docker_config_dir(),
        })
    }
}

#[derive(Debug, Subcommand)]
enum RegistryCommand {
    /// List the tags of a repository (HOST[:PORT]/REPO)
    Tags {
        #[arg(value_name = "REPO-REF")]
        repository: String,
        #[command(flatten)]
        access: RegistryArgs,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// List the repositories of a registry
    Catalog {
        #[arg(value_name = "HOST[:PORT]")]
        host: String,
        #[command(flatten)]
        access: RegistryArgs,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
    /// Delete the manifest a reference names (a tag is resolved to its digest)
    Delete {
        #[arg(value_name = "REF")]
        reference: String,
        #[command(flatten)]
        access: RegistryArgs,
    },
    /// Copy an image (or manifest list) to another tag, repository or registry
    Copy {
        #[arg(value_name = "SRC")]
        source: String,
        #[arg(value_name = "DST")]
        destination: String,
        #[command(flatten)]
        access: RegistryArgs,
    },
    /// Check that a manifest and every blob it names are in the registry (exit 1 if not)
    Check {
        #[arg(value_name = "REF")]
        reference: String,
        #[command(flatten)]
        access: RegistryArgs,
        /// Print JSON on stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct CompressionArgs {
    /// The compressed format [default: the config file's compress_format, else zip]
    #[arg(long, value_name = "FORMAT", value_enum)]
    format: Option<FormatArg>,
    /// The compression level: zip 0-9 (0 stores; default 6), zst 1-19 (default 3)
    /// [default: the config file's compress_level]
    #[arg(long, value_name = "N")]
    level: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Zip,
    Zst,
}

impl From<FormatArg> for CompressFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Zip => CompressFormat::Zip,
            FormatArg::Zst => CompressFormat::Zst,
        }
    }
}

impl CompressionArgs {
    fn resolve(&self, settings: &Settings) -> Result<Compression, Error> {
        Ok(settings.compression(self.format.map(Into::into), self.level)?)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PullArg {
    Never,
    IfNotPresent,
    Always,
}

impl From<PullArg> for PullPolicy {
    fn from(p: PullArg) -> Self {
        match p {
            PullArg::Never => PullPolicy::Never,
            PullArg::IfNotPresent => PullPolicy::IfNotPresent,
            PullArg::Always => PullPolicy::Always,
        }
    }
}

fn parse_build_arg(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some(("", _)) => Err(format!("`{arg}` has no name before `=`")),
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => std::env::var(arg)
            .map(|v| (arg.to_string(), v))
            .map_err(|_| format!("`{arg}` is not K=V, and no environment variable {arg} is set")),
    }
}

/// Parses the arguments, runs the command, and turns the outcome into an exit code:
/// 0 success, 1 failure, 2 wrong usage.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("toolbox: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = || -> Result<Settings, Error> {
        let (file, path) = ConfigFile::load(cli.config.as_deref())?;
        Ok(Settings::resolve(
            cli.basedir.as_deref(),
            &Environment::from_process(),
            file,
            path,
        )?)
    };
    let wait = if cli.no_wait { Wait::No } else { Wait::Yes };
    let open = || -> Result<Store, Error> { ops::open_store(&settings()?.artifacts_dir) };
    match cli.command {
        Command::Parse { ref names, json } => return parse(names, json),
        Command::IsDirty { ref version } => {
            let dirty = version::is_dirty(version);
            output::print(if dirty { "dirty\n" } else { "clean\n" })?;
            return Ok(if dirty {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        Command::Images {
            ref selection,
            created,
        } => images(&open()?, selection, created)?,
        Command::Extract {
            ref target,
            ref dir,
            ref path,
        } => {
            let archive = select(target, &[], "extract", &open)?;
            let done = extract::extract(&archive, dir, path.as_deref())?;
            for line in &done.skipped {
                eprintln!("toolbox: warning: skipped {line}");
            }
            output::print(&format!(
                "extracted {} entries of {} into {}\n",
                done.entries,
                archive.file_name(),
                dir.display()
            ))?;
        }
        Command::Inspect { ref target, json } => {
            let archive = select(target, &[], "inspect", &open)?;
            let info = image::inspect(&archive)?;
            let text = if json {
                output::json(&info.docker_json(&archive))
            } else {
                output::inspect_text(&info, &archive)
            };
            output::print(&text)?;
        }
        Command::Latest(ref sel) => latest(&open()?, sel)?,
        Command::Config {
            ref baseurl,
            ref selection,
        } => deploy_config(&open()?, baseurl, selection)?,
        Command::Clean {
            ref selection,
            keep,
            dry_run,
        } => {
            let _lock = if dry_run {
                None
            } else {
                Some(lock_dir(&settings()?.artifacts_dir, wait)?)
            };
            clean(&open()?, selection, keep, dry_run)?
        }
        Command::Verify { ref targets } => return verify(targets, &open),
        Command::Compress {
            ref target,
            ref compression,
        } => {
            let settings = settings()?;
            let compression = compression.resolve(&settings)?;
            let _lock = lock_dir(&lock_dir_of(target, &settings.artifacts_dir), wait)?;
            let src = select(target, &[Format::Docker], "compress", &open)?;
            let reporter = progress::reporter(&format!("compressing {}", src.file_name()));
            let dest = ops::compress::compress(&src, &compression, reporter.as_ref())?;
            output::print(&format!("{}\n", output::path_text(&dest)))?;
        }
        Command::Build {
            ref image,
            ref version,
            ref context,
            ref dockerfile,
            ref build_args,
            no_cache,
            ref repository,
        } => {
            let settings = settings()?;
            let entry = settings.image(image);
            let context = context.clone().or(entry.context.clone()).ok_or_else(|| {
                anyhow::anyhow!(
                    "no build context for `{image}`: pass --context DIR, or set images.{image}.context in the config file"
                )
            })?;
            // A --dockerfile is relative to the working directory; the config's, to the context.
            let dockerfile = dockerfile
                .clone()
                .or_else(|| entry.dockerfile.as_ref().map(|f| context.join(f)));
            let mut args: HashMap<String, String> = entry.build_args.clone().into_iter().collect();
            args.extend(build_args.iter().cloned());
            let spec = BuildSpec {
                reference: update::reference(
                    image,
                    repository.as_deref().or(entry.repository.as_deref()),
                    version,
                )?,
                context,
                dockerfile,
                build_args: args,
                no_cache,
            };
            let id = runtime()?.block_on(async {
                let engine = connect(&settings).await?;
                Ok::<_, Error>(engine.build(&spec, &mut std::io::stderr()).await?)
            })?;
            output::print(&format!("{id}\n"))?;
        }
        Command::UpdateImage {
            ref image,
            ref version,
            clean,
            compress,
            ref compression,
            pull,
            ref repository,
            json,
        } => {
            let settings = settings()?;
            let compression = compression.resolve(&settings)?;
            let request = UpdateRequest {
                image: image.clone(),
                version: version.clone(),
                repository: repository.clone().or(settings.image(image).repository),
                compress: compress.then_some(compression),
                clean,
                pull: pull.into(),
            };
            let reporter = progress::reporter(&format!("saving {image}:{version}"));
            let _lock = lock_dir(&settings.artifacts_dir, wait)?;
            let outcome = runtime()?.block_on(async {
                let engine = connect(&settings).await?;
                update::update_image(&engine, &settings.artifacts_dir, &request, reporter).await
            })?;
            render_update(&outcome, json)?;
        }
        Command::Push {
            ref target,
            ref reference,
            ref access,
            json,
        } => {
            let archive = select(target, &[], "push", &open)?;
            let access = access.access()?;
            let cache = Environment::from_process().pushed_layers_file();
            let reporter = progress::reporter(&format!("pushing {}", archive.file_name()));
            let pushed = runtime()?.block_on(ops::push::push(
                &archive,
                reference,
                &access,
                cache.as_deref(),
                reporter,
            ))?;
            let text = if json {
                output::json(&pushed)
            } else {
                format!("{}\n", pushed.digest)
            };
            output::print(&text)?;
        }
        Command::Pull {
            ref reference,
            ref image,
            ref version,
            ref platform,
            compress,
            ref compression,
            ref access,
            json,
        } => {
            let settings = settings()?;
            let compression = compression.resolve(&settings)?;
            let request = registry::PullRequest {
                reference: registry::parse_reference(reference)?,
                image: image.clone(),
                version: version.clone(),
                platform: match platform {
                    Some(p) => toolbox::oci::Platform::parse(p)?,
                    None => toolbox::oci::Platform::host(),
                },
                compress: compress.then_some(compression),
            };
            let access = access.access()?;
            let _lock = lock_dir(&settings.artifacts_dir, wait)?;
            let reporter = progress::reporter(&format!("pulling {reference}"));
            let pulled = runtime()?.block_on(ops::pull::pull(
                &settings.artifacts_dir,
                &request,
                &access,
                reporter,
            ))?;
            let text = if json {
                output::json(&serde_json::json!({
                    "path": output::path_text(&pulled.path),
                    "image": pulled.name.image,
                    "version": pulled.name.version,
                    "id": pulled.name.id,
                    "format": pulled.name.format,
                    "digest": pulled.digest,
                    "written": pulled.written,
                }))
            } else {
                let state = if pulled.written {
                    "written"
                } else {
                    "already current"
                };
                format!("{}: {state}\n", output::path_text(&pulled.path))
            };
            output::print(&text)?;
        }
        Command::Registry(ref command) => return registry_command(command),
        Command::Load { ref target } => {
            let archive = select(target, &[], "load", &open)?;
            let settings = settings()?;
            let reporter = progress::reporter(&format!("loading {}", archive.file_name()));
            let reference = runtime()?.block_on(async {
                let engine = connect(&settings).await?;
                load::load(&engine, &archive, reporter).await
            })?;
            output::print(&format!("{reference}\n"))?;
        }
        Command::Decompress { ref target } => {
            let _lock = lock_dir(&lock_dir_of(target, &settings()?.artifacts_dir), wait)?;
            let src = select(target, &[Format::Zip, Format::Zst], "decompress", &open)?;
            let reporter = progress::reporter(&format!("decompressing {}", src.file_name()));
            let dest = ops::compress::decompress(&src, reporter.as_ref())?;
            output::print(&format!("{}\n", output::path_text(&dest)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn registry_command(command: &RegistryCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match command {
        RegistryCommand::Tags {
            repository,
            access,
            json,
        } => {
            let reference = registry::parse_reference(repository)?;
            let registry = Registry::for_reference(&reference, &access.access()?)?;
            let tags = rt.block_on(registry::tags(&registry, &reference))?;
            output::print(&lines_or_json(&tags, *json))?;
        }
        RegistryCommand::Catalog { host, access, json } => {
            let reference = registry::parse_reference(&format!("{host}/catalog"))?;
            let registry = Registry::for_reference(&reference, &access.access()?)?;
            let repositories = rt.block_on(registry::catalog(&registry, &reference))?;
            output::print(&lines_or_json(&repositories, *json))?;
        }
        RegistryCommand::Delete { reference, access } => {
            let reference = registry::parse_reference(reference)?;
            let registry = Registry::for_reference(&reference, &access.access()?)?;
            let digest = rt.block_on(registry::delete(&registry, &reference))?;
            output::print(&format!("deleted {digest}\n"))?;
        }
        RegistryCommand::Copy {
            source,
            destination,
            access,
        } => {
            let access = access.access()?;
            let src = registry::parse_reference(source)?;
            let dst = registry::parse_reference(destination)?;
            let src_registry = Registry::for_reference(&src, &access)?;
            let dst_registry = Registry::for_reference(&dst, &access)?;
            let digest = rt.block_on(registry::copy(&src_registry, &src, &dst_registry, &dst))?;
            output::print(&format!("{digest}\n"))?;
        }
        RegistryCommand::Check {
            reference,
            access,
            json,
        } => {
            let parsed = registry::parse_reference(reference)?;
            let registry = Registry::for_reference(&parsed, &access.access()?)?;
            let checked = rt.block_on(registry::check(&registry, &parsed))?;
            let text = if *json {
                output::json(&checked)
            } else if checked.missing.is_empty() {
                format!(
                    "{reference}: ok ({} blobs, manifest {})\n",
                    checked.blobs, checked.digest
                )
            } else {
                checked
                    .missing
                    .iter()
                    .map(|d| format!("{reference}: missing blob {d}\n"))
                    .collect()
            };
            output::print(&text)?;
            if !checked.missing.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn lines_or_json(items: &[String], json: bool) -> String {
    if json {
        output::json(items)
    } else {
        items.iter().map(|i| format!("{i}\n")).collect()
    }
}

/// Locks an artifacts directory for a command that changes it, then removes what interrupted
/// runs left there.
fn lock_dir(dir: &Path, wait: Wait) -> Result<DirLock, Error> {
    let lock = DirLock::acquire(dir, wait, &mut || {
        eprintln!(
            "toolbox: waiting for another toolbox run to release `{}`",
            dir.join(toolbox::lock::LOCK_FILE).display()
        );
    })?;
    for path in lock.remove_leftovers(dir)? {
        eprintln!(
            "toolbox: removed `{}`, left by an interrupted run",
            path.display()
        );
    }
    Ok(lock)
}

/// The directory to lock for an `ARCHIVE|IMAGE[:VERSION]` argument: the artifacts directory,
/// unless the argument is a file outside it (then the file's own folder).
fn lock_dir_of(arg: &str, basedir: &Path) -> PathBuf {
    if let Target::Path(path) = Target::parse(arg)
        && let (Ok(file), Ok(base)) = (path.canonicalize(), basedir.canonicalize())
        && !file.starts_with(&base)
    {
        return file.parent().map_or(base, Path::to_path_buf);
    }
    basedir.to_path_buf()
}

/// `verify`: one line per archive, `PATH: ok` or what is wrong; exit 1 when any is bad.
fn verify(targets: &[String], open: &dyn Fn() -> Result<Store, Error>) -> anyhow::Result<ExitCode> {
    let mut archives = Vec::new();
    let mut bad = 0;
    if targets.is_empty() {
        let store = open()?;
        archives.extend(
            store
                .listing(&[], LatestRule::default())
                .into_iter()
                .filter(|a| a.name.format.is_known())
                .cloned(),
        );
    } else {
        for target in targets {
            match select(target, &[], "verify", open) {
                Ok(a) => archives.push(a),
                Err(e) => {
                    output::print(&format!("{target}: {e}\n"))?;
                    bad += 1;
                }
            }
        }
    }
    for archive in &archives {
        let line = match image::verify(archive) {
            Ok(()) => "ok".to_string(),
            Err(image::ArchiveError::Damaged { source, .. }) => source.to_string(),
            Err(e) => e.to_string(),
        };
        bad += usize::from(line != "ok");
        output::print(&format!("{}: {line}\n", output::path_text(&archive.path)))?;
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves an `ARCHIVE|IMAGE[:VERSION]` argument; the artifacts directory is only opened when
/// the argument is not an existing file.
fn select(
    arg: &str,
    formats: &[Format],
    command: &'static str,
    open: &dyn Fn() -> Result<Store, Error>,
) -> Result<toolbox::Archive, Error> {
    let target = Target::parse(arg);
    match &target {
        Target::Path(path) if path.exists() => Ok(store::check_format(
            toolbox::Archive::from_path(path)?,
            formats,
            command,
        )?),
        _ => Ok(open()?.select(&target, formats, command)?),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

async fn connect(settings: &Settings) -> Result<Engine, Error> {
    Ok(Engine::connect(
        settings.docker_host.as_deref(),
        Duration::from_secs(settings.api_timeout_s),
    )
    .await?)
}

#[derive(Serialize)]
struct UpdateJson<'a> {
    path: String,
    image: &'a str,
    version: &'a str,
    id: &'a str,
    format: &'a Format,
    written: bool,
    removed: Vec<String>,
}

fn render_update(outcome: &update::UpdateOutcome, json: bool) -> anyhow::Result<()> {
    let removed: Vec<String> = outcome
        .removed
        .iter()
        .map(|p| output::path_text(p))
        .collect();
    let text = if json {
        output::json(&UpdateJson {
            path: output::path_text(&outcome.path),
            image: &outcome.name.image,
            version: &outcome.name.version,
            id: &outcome.name.id,
            format: &outcome.name.format,
            written: outcome.written,
            removed,
        })
    } else {
        let state = if outcome.written {
            "written"
        } else {
            "already current"
        };
        let mut text = format!("{}: {state}\n", output::path_text(&outcome.path));
        for path in removed {
            text.push_str(&format!("removed {path}\n"));
        }
        text
    };
    output::print(&text)?;
    Ok(())
}

fn parse(names: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let mut parsed = Vec::new();
    let mut failed = false;
    for name in names {
        // A path is accepted: its file name is what is parsed.
        let file_name = name.rsplit('/').next().unwrap_or(name);
        match ArchiveName::parse_strict(file_name) {
            Ok(n) => parsed.push((name, n)),
            Err(e) => {
                eprintln!("toolbox: error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        return Ok(ExitCode::FAILURE);
    }
    if json {
        let items: Vec<NameJson> = parsed.iter().map(|(_, n)| n.into()).collect();
        output::print(&output::json(&items))?;
    } else {
        let mut table = Table::new(vec![
            "NAME", "IMAGE", "VERSION", "IMAGE ID", "FORMAT", "DIRTY",
        ]);
        for (name, n) in &parsed {
            table.row(vec![
                name.to_string(),
                n.image.clone(),
                output::version_cell(&n.version),
                n.id.clone(),
                n.format.to_string(),
                output::yes_no(n.is_dirty()).into(),
            ]);
        }
        output::print(&table.render())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn rule(sel: &Selection) -> LatestRule {
    LatestRule {
        allow_dirty: sel.allow_dirty,
    }
}

fn archive_table(
    archives: &[&toolbox::Archive],
    created: Option<&[Option<time::OffsetDateTime>]>,
) -> String {
    let mut header = vec!["IMAGE", "VERSION", "IMAGE ID", "FORMAT", "SIZE"];
    if created.is_some() {
        header.push("CREATED");
    }
    header.extend(["MODIFIED", "DIRTY"]);
    let mut table = Table::new(header);
    for (i, a) in archives.iter().enumerate() {
        let mut row = vec![
            a.name.image.clone(),
            output::version_cell(&a.name.version),
            a.name.id.clone(),
            a.name.format.to_string(),
            output::human_size(a.size),
        ];
        if let Some(created) = created {
            row.push(created[i].map_or_else(|| "-".into(), output::rfc3339));
        }
        row.extend([
            output::rfc3339(a.modified),
            output::yes_no(a.is_dirty()).into(),
        ]);
        table.row(row);
    }
    table.render()
}

fn images(store: &Store, sel: &Selection, created: bool) -> anyhow::Result<()> {
    let names = store.resolve_images(&sel.images)?;
    let listing = store.listing(&names, rule(sel));
    // Every creation time asked for, in one batch.
    let created: Option<Vec<Option<time::OffsetDateTime>>> = created.then(|| {
        let known: Vec<&toolbox::Archive> = listing
            .iter()
            .copied()
            .filter(|a| a.name.format.is_known())
            .collect();
        let mut times = store.facts().created(&known).into_iter();
        listing
            .iter()
            .map(|a| {
                if a.name.format.is_known() {
                    times.next().flatten()
                } else {
                    None
                }
            })
            .collect()
    });
    if sel.json {
        let items: Vec<ArchiveJson> = listing
            .iter()
            .enumerate()
            .map(|(i, a)| ArchiveJson::new(a, created.as_ref().map(|c| c[i])))
            .collect();
        output::print(&output::json(&items))?;
    } else {
        output::print(&archive_table(&listing, created.as_deref()))?;
    }
    Ok(())
}

fn latest(store: &Store, sel: &Selection) -> anyhow::Result<()> {
    let latest = store.latest_of(&store.resolve_images(&sel.images)?, rule(sel))?;
    if sel.json {
        let items: std::collections::BTreeMap<&str, ArchiveJson> = latest
            .iter()
            .map(|(k, v)| (k.as_str(), (*v).into()))
            .collect();
        output::print(&output::json(&items))?;
    } else {
        let text: String = latest
            .values()
            .map(|a| format!("{}\n", output::path_text(&a.path)))
            .collect();
        output::print(&text)?;
    }
    Ok(())
}

fn deploy_config(store: &Store, baseurl: &str, sel: &Selection) -> anyhow::Result<()> {
    let names = store.resolve_images(&sel.images)?;
    let deployment = deploy::deployment(store, &names, baseurl, rule(sel))?;
    let text = if sel.json {
        output::json(&deployment)
    } else {
        serde_yaml::to_string(&deployment)?
    };
    output::print(&text)?;
    Ok(())
}

fn clean(store: &Store, sel: &Selection, keep: u64, dry_run: bool) -> anyhow::Result<()> {
    let keep = usize::try_from(keep).unwrap_or(usize::MAX);
    let plan = store.clean_plan(&store.resolve_images(&sel.images)?, keep, rule(sel));
    let (done, error) = if dry_run {
        (plan, None)
    } else {
        let (removed, error) = store::remove(&plan);
        (
            plan.into_iter()
                .filter(|a| removed.contains(&a.path))
                .collect(),
            error,
        )
    };
    if sel.json {
        let items: Vec<ArchiveJson> = done.into_iter().map(Into::into).collect();
        output::print(&output::json(&items))?;
    } else {
        let text: String = done
            .iter()
            .map(|a| format!("{}\n", output::path_text(&a.path)))
            .collect();
        output::print(&text)?;
    }
    match error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}
