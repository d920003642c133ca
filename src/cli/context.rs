//! What every command may need from the global flags: the settings in force, the artifacts
//! directory, its lock, archive arguments, the engine.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toolbox::config::{ConfigFile, Environment, ProgressMode, Settings};
use toolbox::engine::Engine;
use toolbox::lock::{self, DirLock, Notice, Wait};
use toolbox::{Archive, Error, Format, Store, Target, ops, store};

use crate::cli::{printer, progress};

/// The global flags, and what commands derive from them.
#[derive(Debug)]
pub struct Context {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--basedir`.
    pub basedir: Option<PathBuf>,
    /// `--no-wait`, as a lock policy.
    pub wait: Wait,
    /// `--progress`.
    pub progress: Option<ProgressMode>,
    /// `--host`/`-H`.
    pub host: Option<String>,
    /// `--context` (before the command).
    pub docker_context: Option<String>,
}

impl Context {
    /// The settings in force: flags, environment, config file, defaults.
    pub fn settings(&self) -> Result<Settings, Error> {
        let (file, path) = ConfigFile::load(self.config.as_deref())?;
        Ok(Settings::resolve(
            self.basedir.as_deref(),
            &Environment::from_process(),
            file,
            path,
        )?)
    }

    /// The reporter of work described by `message`, as `--progress` (else the config file's
    /// `progress`, else `auto`) says.
    pub fn reporter(&self, message: &str) -> std::sync::Arc<dyn toolbox::progress::Reporter> {
        progress::reporter(self.progress_mode(), message)
    }

    /// `--progress`, else the config file's `progress`, else `auto`.
    pub fn progress_mode(&self) -> ProgressMode {
        self.progress
            .or_else(|| self.settings().ok().and_then(|s| s.progress))
            .unwrap_or_default()
    }

    /// The artifacts directory's archives.
    pub fn open(&self) -> Result<Store, Error> {
        ops::open_store(&self.settings()?.artifacts_dir)
    }

    /// The artifacts directory's archives, for a run that must leave the folder as it is
    /// (`clean --dry-run`): what is read of archives is not written to the cache.
    pub fn open_quietly(&self) -> Result<Store, Error> {
        ops::open_store_quietly(&self.settings()?.artifacts_dir)
    }

    /// Resolves an `ARCHIVE|IMAGE[:VERSION]` argument; the artifacts directory is only opened
    /// when the argument is not an existing file.
    pub fn select(
        &self,
        arg: &str,
        formats: &[Format],
        command: &'static str,
    ) -> Result<Archive, Error> {
        let target = Target::parse(arg);
        match &target {
            Target::Path(path) if path.exists() => Ok(store::check_format(
                Archive::from_path(path)?,
                formats,
                command,
            )?),
            _ => Ok(self.open()?.select(&target, formats, command)?),
        }
    }

    /// Locks `dir` for a command that changes it, saying on stderr when it waits and what
    /// interrupted runs left there that it removes.
    pub fn lock(&self, dir: &Path) -> Result<DirLock, Error> {
        Ok(DirLock::for_change(dir, self.wait, &mut tell)?)
    }

    /// Locks the artifacts directory `dir` for a command that writes archives into it
    /// (`update-image`, `pull`), creating it, and saying so, when it is missing.
    pub fn lock_for_writing(&self, dir: &Path) -> Result<DirLock, Error> {
        Ok(DirLock::for_writing(dir, self.wait, &mut tell)?)
    }

    /// Locks the artifacts directory `basedir` for a command that changes what an
    /// `ARCHIVE|IMAGE[:VERSION]` argument names. A file outside it is changed without a lock:
    /// nothing outside the artifacts directory is locked or swept. An argument that names a
    /// link or anything but a regular file is refused before anything is touched.
    pub fn lock_for(&self, arg: &str, basedir: &Path) -> Result<Option<DirLock>, Error> {
        if let Target::Path(path) = Target::parse(arg)
            && fs::symlink_metadata(&path).is_ok()
        {
            Archive::from_path(&path)?;
            if lock::is_outside(&path, basedir) {
                return Ok(None);
            }
        }
        self.lock(basedir).map(Some)
    }
}

/// Says on stderr what locking the artifacts directory did besides locking it.
fn tell(notice: Notice<'_>) {
    match notice {
        Notice::Waiting { lock_file } => printer::notice(&format_args!(
            "waiting for another toolbox run to release `{}`",
            lock_file.display()
        )),
        Notice::RemovedLeftover { path } => printer::notice(&format_args!(
            "removed `{}`, left by an interrupted run",
            path.display()
        )),
        Notice::Created { dir } => printer::notice(&format_args!(
            "created the artifacts directory `{}`",
            dir.display()
        )),
    }
}

/// A runtime for the commands that talk to an engine or a registry.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

impl Context {
    /// Connects to the engine the flags, the environment and the settings name, in the
    /// docker CLI's order.
    pub async fn connect(&self, settings: &Settings) -> Result<Engine, Error> {
        let address = settings.engine_address(
            &Environment::from_process(),
            self.host.as_deref(),
            self.docker_context.as_deref(),
        )?;
        Ok(Engine::connect(&address, Duration::from_secs(settings.api_timeout_s)).await?)
    }
}
