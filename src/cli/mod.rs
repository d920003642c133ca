//! The command line: argument definitions, one small function per command, and exit codes.

mod output;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use toolbox::config::{ConfigFile, Environment, Settings};
use toolbox::{
    ArchiveName, Error, Format, LatestRule, Store, Target, codec, deploy, store, version,
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
    Images(Selection),
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
    /// Turn a .docker archive into a .zip
    Compress {
        /// An archive file, or IMAGE[:VERSION] (its latest .docker archive)
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        target: String,
    },
    /// Turn a .zip archive back into a .docker
    Decompress {
        /// An archive file, or IMAGE[:VERSION] (its latest .zip archive)
        #[arg(value_name = "ARCHIVE|IMAGE[:VERSION]")]
        target: String,
    },
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
        Settings::resolve(
            cli.basedir.as_deref(),
            &Environment::from_process(),
            file,
            path,
        )
    };
    let open = || -> Result<Store, Error> { Store::open(&settings()?.artifacts_dir) };
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
        Command::Images(ref sel) => images(&open()?, sel)?,
        Command::Latest(ref sel) => latest(&open()?, sel)?,
        Command::Config {
            ref baseurl,
            ref selection,
        } => deploy_config(&open()?, baseurl, selection)?,
        Command::Clean {
            ref selection,
            keep,
            dry_run,
        } => clean(&open()?, selection, keep, dry_run)?,
        Command::Compress { ref target } => {
            let src = select(target, Format::Docker, "compress", &open)?;
            let reporter = progress::reporter(&format!("compressing {}", src.file_name()));
            let dest = codec::compress(&src, reporter.as_ref())?;
            output::print(&format!("{}\n", output::path_text(&dest)))?;
        }
        Command::Decompress { ref target } => {
            let src = select(target, Format::Zip, "decompress", &open)?;
            let reporter = progress::reporter(&format!("decompressing {}", src.file_name()));
            let dest = codec::decompress(&src, reporter.as_ref())?;
            output::print(&format!("{}\n", output::path_text(&dest)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves an `ARCHIVE|IMAGE[:VERSION]` argument; the artifacts directory is only opened when
/// the argument is not an existing file.
fn select(
    arg: &str,
    format: Format,
    command: &'static str,
    open: &dyn Fn() -> Result<Store, Error>,
) -> Result<toolbox::Archive, Error> {
    let target = Target::parse(arg);
    match &target {
        Target::Path(path) if path.exists() => {
            store::check_format(toolbox::Archive::from_path(path)?, &format, command)
        }
        _ => open()?.select(&target, &format, command),
    }
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

fn archive_table<'a>(archives: impl IntoIterator<Item = &'a toolbox::Archive>) -> String {
    let mut table = Table::new(vec![
        "IMAGE", "VERSION", "IMAGE ID", "FORMAT", "SIZE", "MODIFIED", "DIRTY",
    ]);
    for a in archives {
        table.row(vec![
            a.name.image.clone(),
            output::version_cell(&a.name.version),
            a.name.id.clone(),
            a.name.format.to_string(),
            output::human_size(a.size),
            output::rfc3339(a.modified),
            output::yes_no(a.is_dirty()).into(),
        ]);
    }
    table.render()
}

fn images(store: &Store, sel: &Selection) -> anyhow::Result<()> {
    let listing = store.listing(&sel.images, rule(sel));
    if sel.json {
        let items: Vec<ArchiveJson> = listing.into_iter().map(Into::into).collect();
        output::print(&output::json(&items))?;
    } else {
        output::print(&archive_table(listing))?;
    }
    Ok(())
}

fn latest(store: &Store, sel: &Selection) -> anyhow::Result<()> {
    let latest = store.latest_of(&sel.images, rule(sel))?;
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
    let deployment = deploy::deployment(store, &sel.images, baseurl, rule(sel))?;
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
    let plan = store.clean_plan(&sel.images, keep, rule(sel));
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
