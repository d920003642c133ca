//! Exit codes, in one place: 0 success, 1 failure (one line on stderr says why), 2 wrong usage.

use std::io;
use std::process::ExitCode;

use crate::cli::printer;

/// How a command that ran to its end came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0 (`is-dirty`: the version is dirty).
    Success,
    /// Exit 1; the command has already said why (`is-dirty`: the version is clean; `verify`:
    /// an archive is damaged; `registry check`: a blob is missing; `parse`: a name is wrong).
    Failure,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// What the library reports.
    #[error(transparent)]
    Toolbox(#[from] toolbox::Error),
    /// A build that the flags and the config file cannot describe.
    #[error(transparent)]
    Build(#[from] toolbox::ops::build::Error),
    /// Writing the output, or starting the runtime, failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The deploy configuration could not be written as YAML.
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
    /// `--password-stdin`, and stdin cannot be read.
    #[error("--password-stdin: cannot read stdin: {0}")]
    Stdin(#[source] io::Error),
    /// An argument the command line accepted but the command cannot use (an image name with
    /// `/`, a version with `_`, a level out of range): wrong usage, exit 2.
    #[error(transparent)]
    Usage(Box<Failure>),
    /// `--password-stdin`, and stdin is empty.
    #[error("--password-stdin: stdin gave no password")]
    NoPassword,
    /// What the command line says is wrong, in its words.
    #[error("{0}")]
    Message(String),
}

impl Failure {
    /// `error`, told as wrong usage (exit 2): the argument it names is invalid.
    pub fn usage(error: impl Into<Failure>) -> Failure {
        Failure::Usage(Box::new(error.into()))
    }

    /// Wrong usage (exit 2), said in `text`.
    pub fn usage_text(text: impl Into<String>) -> Failure {
        Failure::Usage(Box::new(Failure::Message(text.into())))
    }

    /// Whether this is wrong usage (exit 2): a failure marked so, or an error that only an
    /// argument can cause — a registry reference that does not parse, a platform that is not
    /// `os/arch[/variant]`, an empty `--baseurl`.
    pub fn is_usage(&self) -> bool {
        use toolbox::registry::RegistryError;
        matches!(
            self,
            Failure::Usage(_)
                | Failure::Toolbox(
                    toolbox::Error::Registry(RegistryError::BadReference { .. })
                        | toolbox::Error::Platform(_)
                        | toolbox::Error::BadUrl { .. }
                        | toolbox::Error::Engine(
                            toolbox::engine::EngineError::SecretNeedsBuildKit { .. }
                        )
                        | toolbox::Error::Config(toolbox::config::ConfigError::HostAndContext)
                )
        )
    }
}

/// Every layer's error is the library's error to the command line.
macro_rules! from_layer {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Failure::Toolbox(e.into())
            }
        })*
    };
}

from_layer!(
    toolbox::archive::ArchiveFileError,
    toolbox::codec::CodecError,
    toolbox::config::ConfigError,
    toolbox::engine::EngineError,
    toolbox::image::ArchiveError,
    toolbox::io_error::IoError,
    toolbox::lock::LockError,
    toolbox::meta::MetaError,
    toolbox::name::NameError,
    toolbox::oci::PlatformError,
    toolbox::registry::RegistryError,
    toolbox::store::StoreError,
    toolbox::version::VersionError,
);

/// The exit code of a command's outcome; a failure is told on stderr first.
pub fn code(outcome: Result<Status, Failure>) -> ExitCode {
    match outcome {
        Ok(Status::Success) => ExitCode::SUCCESS,
        Ok(Status::Failure) => ExitCode::FAILURE,
        Err(failure) => {
            // An interrupted run's own errors are not the user's news: the signal handler says
            // what happened and exits.
            if toolbox::interrupt::interrupted() {
                toolbox::interrupt::wait_for_exit();
            }
            printer::error(&failure);
            if failure.is_usage() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The exit code of arguments clap refused (2), or of `--help` and `--version` (0), after
/// printing what clap has to say.
pub fn usage(error: &clap::Error) -> ExitCode {
    // Nothing more can be said when even this cannot be printed.
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
