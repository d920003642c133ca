//! The flag groups several commands share: the selection of images, the compression, registry
//! access and the pull policy.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use toolbox::codec::Compression;
use toolbox::config::Environment;
use toolbox::config::{CompressFormat, Settings};
use toolbox::engine::PullPolicy;
use toolbox::{LatestRule, registry};

use crate::cli::exit::Failure;

/// The images a listing command acts on, the latest rule, and `--json`.
#[derive(Debug, Args)]
pub struct Selection {
    /// Images to act on (all when none is given)
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,

    /// Let dirty versions (latest, dev, *.dirty, *+dirty, a.b.c.0) rank like clean ones
    #[arg(long)]
    pub allow_dirty: bool,

    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

impl Selection {
    /// The latest rule the flags ask for.
    pub fn rule(&self) -> LatestRule {
        LatestRule {
            allow_dirty: self.allow_dirty,
        }
    }
}

/// `--format` and `--level`, for commands that write compressed archives.
#[derive(Debug, Args)]
pub struct CompressionArgs {
    /// The compressed format [default: the config file's compress_format, else zip]
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = PossibleValuesParser::new(CompressFormat::NAMES)
            .try_map(|s| s.parse::<CompressFormat>())
    )]
    pub format: Option<CompressFormat>,
    /// The compression level: zip 0-9 (0 stores; default 6), zst 1-19 (default 3)
    /// [default: the config file's compress_level]
    #[arg(long, value_name = "N")]
    pub level: Option<u32>,
}

impl CompressionArgs {
    /// The compression in force: these flags, else the config file's settings. A `--level`
    /// the format does not take is wrong usage (exit 2).
    pub fn resolve(&self, settings: &Settings) -> Result<Compression, Failure> {
        settings
            .compression(self.format, self.level)
            .map_err(|e| match self.level {
                Some(_) => Failure::usage(e),
                None => e.into(),
            })
    }
}

/// How to reach a registry: plain HTTP, an extra CA, credentials.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Talk plain HTTP to the registry (always done for loopback addresses)
    #[arg(long)]
    pub insecure: bool,
    /// A PEM file of CA certificates to trust besides the system's
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// The user name [default: the Docker config file's credentials for the registry]
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from stdin
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// How many times a request that fails in passing (a connection refused, reset or timed
    /// out; HTTP 429 or 5xx) is tried again, with a growing wait (or the registry's
    /// Retry-After)
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,
}

/// Retries said on stderr, one line each.
pub fn retry_notice() -> registry::Notify {
    std::sync::Arc::new(|message: &str| crate::cli::printer::warning(&message))
}

impl RegistryArgs {
    /// The registry access these flags give; with `--username`, the password is read from
    /// stdin.
    pub fn access(&self) -> Result<registry::Access, Failure> {
        let credentials = match &self.username {
            Some(user) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_to_string(&mut password)
                    .map_err(Failure::Stdin)?;
                let password = password.trim_end_matches(['\n', '\r']).to_string();
                if password.is_empty() {
                    return Err(Failure::NoPassword);
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
            retries: self.retries,
            notify: Some(retry_notice()),
        })
    }
}

/// `--pull`: when to pull an image into the engine first.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// When to pull the image first
    #[arg(
        long,
        value_name = "POLICY",
        default_value = "never",
        value_parser = PossibleValuesParser::new(PullPolicy::NAMES)
            .try_map(|s| s.parse::<PullPolicy>())
    )]
    pub pull: PullPolicy,
}
