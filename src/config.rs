//! The configuration: a YAML file, environment variables and flags, in that order of strength
//! (flags beat the environment, which beats the file, which beats the defaults).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

use crate::codec::CodecError;
use crate::codec::Compression;

/// What is wrong with the config file or the environment.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file `{}`: {message}", path.display())]
    Invalid { path: PathBuf, message: String },

    #[error("config file `{}`: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },

    #[error("config file `{}`: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("environment variable {name}=`{value}`: {reason}")]
    BadEnvironment {
        name: &'static str,
        value: String,
        reason: String,
    },

    #[error("conflicting options: either specify --host or --context, not both")]
    HostAndContext,

    #[error(transparent)]
    DockerCli(#[from] crate::docker_cli::DockerCliError),
}

type Error = ConfigError;
type Result<T, E = ConfigError> = std::result::Result<T, E>;
use crate::engine::{EngineAddress, TlsFiles};
use crate::name::{self, Format};

/// The config file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "config/toolbox.yaml";
/// The artifacts directory when nothing else names one.
pub const DEFAULT_ARTIFACTS_DIR: &str = "./artifacts";
/// Seconds to wait for the engine to answer, when nothing else says.
pub const DEFAULT_API_TIMEOUT_S: u64 = 120;

/// The environment variable naming the artifacts directory.
pub const ENV_ARTIFACTS_DIR: &str = "TOOLBOX_ARTIFACTS_DIR";
/// The environment variable naming the engine's address.
pub const ENV_DOCKER_HOST: &str = "DOCKER_HOST";
/// The environment variable bounding the wait for the engine, in seconds.
pub const ENV_API_TIMEOUT: &str = "TOOLBOX_DOCKER_API_TIMEOUT";

/// The contents of a config file.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// The artifacts directory (relative paths are relative to the working directory).
    pub artifacts_dir: Option<PathBuf>,
    /// The engine's address (`unix:///path` or `tcp://host:port`).
    pub docker_host: Option<String>,
    /// Seconds to wait for the engine to answer.
    pub api_timeout_s: Option<u64>,
    /// The format of compressed archives: `zip` (the default) or `zst`.
    pub compress_format: Option<CompressFormat>,
    /// The compression level (`zip`: 0-9, default 6; `zst`: 1-19, default 3).
    pub compress_level: Option<u32>,
    /// How long work shows its progress: `auto`, `bar`, `plain` or `none`.
    pub progress: Option<ProgressMode>,
    /// `update-image` writes versions into the layer store as `.ref` archives (per image:
    /// `images.IMAGE.store`).
    pub store: Option<bool>,
    /// How the layer store compresses plain layers: `gzip` (the default) or `zstd`.
    pub layer_compression: Option<LayerCompressionName>,
    /// The URL the artifacts directory is served under (`config`'s `--baseurl`).
    pub baseurl: Option<String>,
    /// Per-image settings, keyed by image name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub images: BTreeMap<String, ImageConfig>,
}

/// How long work shows its progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, nothing otherwise.
    #[default]
    Auto,
    /// A bar (drawn only on a terminal).
    Bar,
    /// A line about every 10 % or 10 s, for logs.
    Plain,
    /// Nothing.
    None,
}

impl ProgressMode {
    /// The names the flag and the config file take.
    pub const NAMES: [&'static str; 4] = ["auto", "bar", "plain", "none"];
}

impl std::str::FromStr for ProgressMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s {
            "auto" => Ok(ProgressMode::Auto),
            "bar" => Ok(ProgressMode::Bar),
            "plain" => Ok(ProgressMode::Plain),
            "none" => Ok(ProgressMode::None),
            _ => Err(ConfigError::BadEnvironment {
                name: "--progress",
                value: s.to_string(),
                reason: "use auto, bar, plain or none".into(),
            }),
        }
    }
}

/// The format of compressed archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressFormat {
    #[default]
    Zip,
    Zst,
}

impl CompressFormat {
    /// The formats' names, as flags and the config file spell them.
    pub const NAMES: [&'static str; 2] = ["zip", "zst"];

    /// The format's name.
    pub fn as_str(self) -> &'static str {
        match self {
            CompressFormat::Zip => "zip",
            CompressFormat::Zst => "zst",
        }
    }
}

impl std::str::FromStr for CompressFormat {
    type Err = CodecError;

    fn from_str(s: &str) -> Result<Self, CodecError> {
        match s {
            "zip" => Ok(CompressFormat::Zip),
            "zst" => Ok(CompressFormat::Zst),
            _ => Err(CodecError::NotACompressedFormat {
                format: s.to_string(),
            }),
        }
    }
}

impl std::fmt::Display for CompressFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CompressFormat> for Format {
    fn from(f: CompressFormat) -> Format {
        match f {
            CompressFormat::Zip => Format::Zip,
            CompressFormat::Zst => Format::Zst,
        }
    }
}

/// How the layer store compresses the plain layers it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompressionName {
    /// `tar+gzip`, which every engine and skopeo read.
    #[default]
    Gzip,
    /// `tar+zstd`: smaller and faster, but Docker 20.10 cannot pull or load it, nor Debian 12's
    /// skopeo copy it into a Docker archive.
    Zstd,
}

impl LayerCompressionName {
    /// The names, as the flag and the config file spell them.
    pub const NAMES: [&'static str; 2] = ["gzip", "zstd"];

    /// The compression, at its default level.
    pub fn compression(self) -> crate::image::ingest::LayerCompression {
        use crate::image::ingest::LayerCompression;
        match self {
            LayerCompressionName::Gzip => LayerCompression::Gzip { level: 6 },
            LayerCompressionName::Zstd => LayerCompression::Zstd { level: 3 },
        }
    }
}

impl std::str::FromStr for LayerCompressionName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(LayerCompressionName::Gzip),
            "zstd" => Ok(LayerCompressionName::Zstd),
            _ => Err(format!(
                "`{s}` is not a layer compression: use gzip or zstd"
            )),
        }
    }
}

/// How one image is built and where it lives in the engine.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// The build context directory.
    pub context: Option<PathBuf>,
    /// The Dockerfile, relative to the context.
    pub dockerfile: Option<PathBuf>,
    /// Build arguments; scalar values are taken as text.
    #[serde(default, deserialize_with = "scalar_map")]
    pub build_args: BTreeMap<String, String>,
    /// The engine repository, when it is not the image name (`registry.local/team/web`).
    pub repository: Option<String>,
    /// The Dockerfile stage to build.
    pub target: Option<String>,
    /// Labels to set on the image; scalar values are taken as text.
    #[serde(default, deserialize_with = "scalar_map")]
    pub labels: BTreeMap<String, String>,
    /// The network of `RUN` steps: `default`, `none` or `host`.
    pub network: Option<String>,
    /// The platform to build for, `os/arch[/variant]`.
    pub platform: Option<String>,
    /// Secrets for `RUN --mount=type=secret`, as `--secret` takes them (`id=ID,src=FILE`,
    /// `id=ID,env=VAR`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: Vec<String>,
    /// `update-image` writes this image's versions into the layer store.
    pub store: Option<bool>,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn scalar_map<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    use serde::de::Error as _;
    let raw: Option<BTreeMap<String, serde_yaml::Value>> = Option::deserialize(d)?;
    raw.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Number(n) => n.to_string(),
                serde_yaml::Value::Bool(b) => b.to_string(),
                serde_yaml::Value::Null => String::new(),
                _ => {
                    return Err(D::Error::custom(format!(
                        "build argument `{k}` must be a single value"
                    )));
                }
            };
            Ok((k, text))
        })
        .collect()
}

impl ConfigFile {
    /// Parses a config file's text; `path` is named in errors.
    pub fn parse(text: &str, path: &Path) -> Result<ConfigFile> {
        let error = |message: String| Error::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if text.trim().is_empty() {
            return Ok(ConfigFile::default());
        }
        let file: ConfigFile = serde_yaml::from_str(text).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if file.api_timeout_s == Some(0) {
            return Err(error("api_timeout_s: must be at least 1 (seconds)".into()));
        }
        for (image, entry) in &file.images {
            name::check_image(image).map_err(|e| error(format!("images: {e}")))?;
            if entry.repository.as_deref() == Some("") {
                return Err(error(format!(
                    "images.{image}.repository: must not be empty"
                )));
            }
        }
        Ok(file)
    }

    /// Reads the config file: `explicit` must exist; without it, [`DEFAULT_FILE`] is read when
    /// it exists, and an empty configuration is used when it does not.
    pub fn load(explicit: Option<&Path>) -> Result<(ConfigFile, Option<PathBuf>)> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok((ConfigFile::default(), None)),
        };
        let text = fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        Ok((Self::parse(&text, &path)?, Some(path)))
    }
}

/// The environment variables toolbox reads, gathered by the caller (the library never reads
/// the environment itself). Empty values count as unset.
#[derive(Debug, Default, Clone)]
pub struct Environment {
    pub artifacts_dir: Option<String>,
    pub docker_host: Option<String>,
    pub api_timeout: Option<String>,
    /// `DOCKER_CONFIG`: the Docker config directory.
    pub docker_config: Option<PathBuf>,
    /// `XDG_CACHE_HOME`: the user's cache directory.
    pub cache_home: Option<PathBuf>,
    /// `HOME`.
    pub home: Option<PathBuf>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `DOCKER_TLS_VERIFY` (any value turns verification on, as with the docker CLI).
    pub docker_tls_verify: Option<String>,
    /// `DOCKER_TLS` (TLS without verification, unless `DOCKER_TLS_VERIFY`).
    pub docker_tls: Option<String>,
    /// `DOCKER_CERT_PATH`: `ca.pem`, `cert.pem`, `key.pem` (default `~/.docker`).
    pub docker_cert_path: Option<PathBuf>,
}

impl Environment {
    /// Reads the variables from this process's environment.
    pub fn from_process() -> Environment {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let path = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Environment {
            artifacts_dir: var(ENV_ARTIFACTS_DIR),
            docker_host: var(ENV_DOCKER_HOST),
            api_timeout: var(ENV_API_TIMEOUT),
            docker_config: path("DOCKER_CONFIG"),
            cache_home: path("XDG_CACHE_HOME"),
            home: path("HOME"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_tls_verify: var("DOCKER_TLS_VERIFY"),
            docker_tls: var("DOCKER_TLS"),
            docker_cert_path: path("DOCKER_CERT_PATH"),
        }
    }

    /// TLS for an address given outright (`--host`, `DOCKER_HOST`, `docker_host`), as the
    /// docker CLI sets it from the environment: on with `DOCKER_TLS_VERIFY` (verifying),
    /// `DOCKER_TLS` or `DOCKER_CERT_PATH`; files from `DOCKER_CERT_PATH`, else `~/.docker`.
    pub fn engine_tls(&self) -> Option<TlsFiles> {
        let verify = self.docker_tls_verify.is_some();
        if !verify && self.docker_tls.is_none() && self.docker_cert_path.is_none() {
            return None;
        }
        let dir = self
            .docker_cert_path
            .clone()
            .or_else(|| self.docker_config_dir())
            .unwrap_or_else(|| PathBuf::from(".docker"));
        Some(TlsFiles::in_dir(&dir, verify))
    }

    /// The engine's address as the docker CLI resolves it: `host_flag` (`--host`) >
    /// `context_flag` (`--context`) > `DOCKER_HOST` > `DOCKER_CONTEXT` > `currentContext` in
    /// the docker CLI's config file > `file_host` (the config file's `docker_host`, read from
    /// `file`) > the default socket. The context `default` means none.
    pub fn engine_address(
        &self,
        host_flag: Option<&str>,
        context_flag: Option<&str>,
        file_host: Option<&str>,
        file: Option<&Path>,
    ) -> Result<EngineAddress> {
        if host_flag.is_some() && context_flag.is_some() {
            return Err(Error::HostAndContext);
        }
        let given = |host: &str, source: String| EngineAddress {
            host: host.to_string(),
            tls: self.engine_tls(),
            source,
        };
        if let Some(host) = host_flag {
            return Ok(given(host, "from --host".into()));
        }
        let docker_dir = self
            .docker_config_dir()
            .unwrap_or_else(|| PathBuf::from(".docker"));
        let from_context = |name: &str, said: String| -> Result<Option<EngineAddress>> {
            if name == "default" {
                return Ok(None);
            }
            let endpoint = crate::docker_cli::context_endpoint(&docker_dir, name)?;
            let tls = match &endpoint.tls_dir {
                Some(dir) => Some(TlsFiles::in_dir(dir, !endpoint.skip_tls_verify)),
                None if endpoint.skip_tls_verify => Some(TlsFiles::default()),
                None => None,
            };
            Ok(Some(EngineAddress {
                host: endpoint.host,
                tls,
                source: format!(
                    "from context `{name}` ({said}), in {}",
                    endpoint.meta.display()
                ),
            }))
        };
        if let Some(name) = context_flag
            && let Some(address) = from_context(name, "--context".into())?
        {
            return Ok(address);
        }
        if context_flag.is_none() {
            if let Some(host) = &self.docker_host {
                return Ok(given(host, format!("from {ENV_DOCKER_HOST}")));
            }
            if let Some(name) = &self.docker_context {
                if let Some(address) = from_context(name, "DOCKER_CONTEXT".into())? {
                    return Ok(address);
                }
            } else {
                let cli = crate::docker_cli::DockerConfig::load(&docker_dir)?;
                if let Some(name) = cli.current_context()
                    && let Some(address) =
                        from_context(name, format!("currentContext in {}", cli.path.display()))?
                {
                    return Ok(address);
                }
            }
        }
        if let Some(host) = file_host {
            let source = match file {
                Some(f) => format!("from docker_host in {}", f.display()),
                None => "from docker_host in the config file".to_string(),
            };
            return Ok(given(host, source));
        }
        Ok(EngineAddress {
            tls: self.engine_tls(),
            ..EngineAddress::default_socket()
        })
    }

    /// The Docker config directory, whose `config.json` holds registry credentials:
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn docker_config_dir(&self) -> Option<PathBuf> {
        (self.docker_config.clone()).or_else(|| self.home.as_ref().map(|h| h.join(".docker")))
    }

    /// The file recording which blob each pushed layer became:
    /// `$XDG_CACHE_HOME/toolbox/pushed-layers.json`, else `~/.cache/toolbox/pushed-layers.json`.
    pub fn pushed_layers_file(&self) -> Option<PathBuf> {
        let cache =
            (self.cache_home.clone()).or_else(|| self.home.as_ref().map(|h| h.join(".cache")));
        cache.map(|d| d.join("toolbox").join("pushed-layers.json"))
    }
}

/// The settings in force after flags, environment, file and defaults are weighed.
#[derive(Debug, Clone)]
pub struct Settings {
    pub artifacts_dir: PathBuf,
    pub docker_host: Option<String>,
    /// Whether `docker_host` came from the environment (`DOCKER_HOST`) rather than the file.
    pub docker_host_from_env: bool,
    pub api_timeout_s: u64,
    pub images: BTreeMap<String, ImageConfig>,
    pub compress_format: Option<CompressFormat>,
    pub compress_level: Option<u32>,
    /// The config file's `progress`.
    pub progress: Option<ProgressMode>,
    /// The config file's `store` (top level).
    pub store: Option<bool>,
    /// The config file's `layer_compression`.
    pub layer_compression: Option<LayerCompressionName>,
    /// The config file's `baseurl`.
    pub baseurl: Option<String>,
    /// The config file read, if any.
    pub file: Option<PathBuf>,
}

impl Settings {
    /// Weighs `basedir_flag` (the `--basedir` flag), the environment and the file.
    pub fn resolve(
        basedir_flag: Option<&Path>,
        env: &Environment,
        file: ConfigFile,
        file_path: Option<PathBuf>,
    ) -> Result<Settings> {
        let artifacts_dir = basedir_flag
            .map(Path::to_path_buf)
            .or_else(|| env.artifacts_dir.as_ref().map(PathBuf::from))
            .or(file.artifacts_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ARTIFACTS_DIR));
        let api_timeout_s = match &env.api_timeout {
            Some(raw) => match raw.trim().parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(Error::BadEnvironment {
                        name: ENV_API_TIMEOUT,
                        value: raw.clone(),
                        reason: "expected a whole number of seconds, at least 1".into(),
                    });
                }
            },
            None => file.api_timeout_s.unwrap_or(DEFAULT_API_TIMEOUT_S),
        };
        Ok(Settings {
            artifacts_dir,
            docker_host_from_env: env.docker_host.is_some(),
            docker_host: env.docker_host.clone().or(file.docker_host),
            api_timeout_s,
            images: file.images,
            compress_format: file.compress_format,
            compress_level: file.compress_level,
            progress: file.progress,
            store: file.store,
            layer_compression: file.layer_compression,
            baseurl: file.baseurl,
            file: file_path,
        })
    }

    /// The engine's address, as [`Environment::engine_address`] resolves it with these
    /// settings' config file.
    pub fn engine_address(
        &self,
        env: &Environment,
        host_flag: Option<&str>,
        context_flag: Option<&str>,
    ) -> Result<EngineAddress> {
        let file_host = if self.docker_host_from_env {
            None
        } else {
            self.docker_host.as_deref()
        };
        env.engine_address(host_flag, context_flag, file_host, self.file.as_deref())
    }

    /// Where the engine address came from, in words: `from DOCKER_HOST`, `from docker_host in
    /// FILE`, or `the default address`.
    pub fn docker_host_source(&self) -> String {
        match (&self.docker_host, self.docker_host_from_env, &self.file) {
            (None, _, _) => "the default address".to_string(),
            (Some(_), true, _) => format!("from {ENV_DOCKER_HOST}"),
            (Some(_), false, Some(file)) => format!("from docker_host in {}", file.display()),
            (Some(_), false, None) => "from docker_host in the config file".to_string(),
        }
    }

    /// The compression in force: the flags' format and level, else the config file's, else
    /// `zip` at its default level.
    pub fn compression(
        &self,
        format: Option<CompressFormat>,
        level: Option<u32>,
    ) -> Result<Compression, CodecError> {
        let format = format.or(self.compress_format).unwrap_or_default();
        Compression::new(format.into(), level.or(self.compress_level))
    }

    /// The settings of one image (empty when the file has none).
    pub fn image(&self, image: &str) -> ImageConfig {
        self.images.get(image).cloned().unwrap_or_default()
    }

    /// Whether `update-image` of `image` writes into the layer store, by the config file (the
    /// image's `store`, else the top level's).
    pub fn store_for(&self, image: &str) -> bool {
        self.images
            .get(image)
            .and_then(|i| i.store)
            .or(self.store)
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigFile> {
        ConfigFile::parse(text, Path::new("t.yaml"))
    }

    #[test]
    fn progress_mode() {
        assert_eq!(
            parse("progress: plain\n").unwrap().progress,
            Some(ProgressMode::Plain)
        );
        assert!(parse("progress: loud\n").is_err());
        assert_eq!("none".parse::<ProgressMode>().unwrap(), ProgressMode::None);
    }

    #[test]
    fn full_file() {
        let file = parse(
            "artifacts_dir: /srv/artifacts\ndocker_host: unix:///run/d.sock\napi_timeout_s: 30\n\
             images:\n  web:\n    context: web\n    dockerfile: Dockerfile.prod\n    repository: registry.local/team/web\n    \
             build_args:\n      PORT: 8080\n      NAME: x\n      DEBUG: false\n",
        )
        .unwrap();
        assert_eq!(
            file.artifacts_dir.as_deref(),
            Some(Path::new("/srv/artifacts"))
        );
        assert_eq!(file.api_timeout_s, Some(30));
        let web = &file.images["web"];
        assert_eq!(web.repository.as_deref(), Some("registry.local/team/web"));
        assert_eq!(web.build_args["PORT"], "8080");
        assert_eq!(web.build_args["DEBUG"], "false");
    }

    #[test]
    fn empty_and_null_sections() {
        assert_eq!(parse("").unwrap(), ConfigFile::default());
        assert_eq!(parse("# only a comment\n").unwrap(), ConfigFile::default());
        assert!(parse("images:\n").unwrap().images.is_empty());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_file() {
        let err = parse("artifact_dir: x\n").unwrap_err().to_string();
        assert!(
            err.contains("artifact_dir") && err.contains("t.yaml"),
            "{err}"
        );
        let err = parse("images:\n  web:\n    contxt: x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("contxt"), "{err}");
        let err = parse("api_timeout_s: soon\n").unwrap_err().to_string();
        assert!(err.contains("api_timeout_s"), "{err}");
        let err = parse("compress_format: gzip\n").unwrap_err().to_string();
        assert!(
            err.contains("compress_format") || err.contains("gzip"),
            "{err}"
        );
        assert_eq!(
            parse("compress_format: zst\n").unwrap().compress_format,
            Some(CompressFormat::Zst)
        );
        let err = parse("api_timeout_s: 0\n").unwrap_err().to_string();
        assert!(err.contains("api_timeout_s"), "{err}");
        assert!(parse("images:\n  a/b: {}\n").is_err());
        assert!(parse("[1, 2]\n").is_err());
    }

    #[test]
    fn compress_formats_parse_from_their_names() {
        for name in CompressFormat::NAMES {
            let format: CompressFormat = name.parse().unwrap();
            assert_eq!(format.to_string(), name);
        }
        let err = "gzip".parse::<CompressFormat>().unwrap_err().to_string();
        assert!(err.contains("gzip") && err.contains("zst"), "{err}");
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let file = parse("artifacts_dir: from-file\napi_timeout_s: 30\n").unwrap();
        let env = Environment {
            artifacts_dir: Some("from-env".into()),
            ..Default::default()
        };
        let s = Settings::resolve(Some(Path::new("from-flag")), &env, file.clone(), None).unwrap();
        assert_eq!(s.artifacts_dir, Path::new("from-flag"));
        let s = Settings::resolve(None, &env, file.clone(), None).unwrap();
        assert_eq!(s.artifacts_dir, Path::new("from-env"));
        let s = Settings::resolve(None, &Environment::default(), file.clone(), None).unwrap();
        assert_eq!(s.artifacts_dir, Path::new("from-file"));
        assert_eq!(s.api_timeout_s, 30);
        let s =
            Settings::resolve(None, &Environment::default(), ConfigFile::default(), None).unwrap();
        assert_eq!(s.artifacts_dir, Path::new(DEFAULT_ARTIFACTS_DIR));
        assert_eq!(s.api_timeout_s, DEFAULT_API_TIMEOUT_S);
        let env = Environment {
            api_timeout: Some("abc".into()),
            ..Default::default()
        };
        let err = Settings::resolve(None, &env, file, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(ENV_API_TIMEOUT), "{err}");
    }

    #[test]
    fn docker_config_and_layer_cache_paths() {
        let home = Environment {
            home: Some("/home/ann".into()),
            ..Default::default()
        };
        assert_eq!(
            home.docker_config_dir(),
            Some(PathBuf::from("/home/ann/.docker"))
        );
        assert_eq!(
            home.pushed_layers_file(),
            Some(PathBuf::from("/home/ann/.cache/toolbox/pushed-layers.json"))
        );
        let set = Environment {
            docker_config: Some("/etc/docker-ann".into()),
            cache_home: Some("/var/cache/ann".into()),
            ..home
        };
        assert_eq!(
            set.docker_config_dir(),
            Some(PathBuf::from("/etc/docker-ann"))
        );
        assert_eq!(
            set.pushed_layers_file(),
            Some(PathBuf::from("/var/cache/ann/toolbox/pushed-layers.json"))
        );
        assert_eq!(Environment::default().docker_config_dir(), None);
        assert_eq!(Environment::default().pushed_layers_file(), None);
    }

    /// A docker config folder with contexts `ci` (TLS, verified) and `lab` (ssh).
    fn contexts() -> tempfile::TempDir {
        use sha2::Digest;
        let d = tempfile::tempdir().unwrap();
        for (name, host, skip) in [
            ("ci", "tcp://10.0.0.5:2376", false),
            ("lab", "ssh://me@lab", false),
        ] {
            let id: String = sha2::Sha256::digest(name.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let meta = d.path().join("contexts/meta").join(&id);
            std::fs::create_dir_all(&meta).unwrap();
            std::fs::write(
                meta.join("meta.json"),
                format!(
                    r#"{{"Name":"{name}","Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":{skip}}}}}}}"#
                ),
            )
            .unwrap();
            if name == "ci" {
                let tls = d.path().join("contexts/tls").join(&id).join("docker");
                std::fs::create_dir_all(&tls).unwrap();
                std::fs::write(tls.join("ca.pem"), "x").unwrap();
            }
        }
        std::fs::write(d.path().join("config.json"), r#"{"currentContext":"lab"}"#).unwrap();
        d
    }

    #[test]
    fn the_engine_address_in_the_docker_clis_order() {
        let d = contexts();
        let env = |host: Option<&str>, context: Option<&str>| Environment {
            docker_host: host.map(str::to_string),
            docker_context: context.map(str::to_string),
            docker_config: Some(d.path().to_path_buf()),
            ..Environment::default()
        };
        let resolve = |e: &Environment, h: Option<&str>, c: Option<&str>, file: Option<&str>| {
            e.engine_address(h, c, file, Some(Path::new("t.yaml")))
                .map(|a| (a.host, a.source))
        };
        let full = env(Some("tcp://env:2375"), Some("ci"));
        let (host, source) = resolve(&full, Some("unix:///flag"), None, Some("unix:///f")).unwrap();
        assert_eq!(
            (host.as_str(), source.as_str()),
            ("unix:///flag", "from --host")
        );
        let (host, source) = resolve(&full, None, Some("lab"), Some("unix:///f")).unwrap();
        assert_eq!(host, "ssh://me@lab");
        assert!(source.contains("context `lab` (--context)"), "{source}");
        let (host, source) = resolve(&full, None, None, Some("unix:///f")).unwrap();
        assert_eq!(
            (host.as_str(), source.as_str()),
            ("tcp://env:2375", "from DOCKER_HOST")
        );
        let (host, source) = resolve(&env(None, Some("ci")), None, None, None).unwrap();
        assert_eq!(host, "tcp://10.0.0.5:2376");
        assert!(
            source.contains("DOCKER_CONTEXT") && source.contains("meta.json"),
            "{source}"
        );
        let (host, source) = resolve(&env(None, None), None, None, Some("unix:///f")).unwrap();
        assert_eq!(host, "ssh://me@lab");
        assert!(source.contains("currentContext in"), "{source}");
        // The context `default` falls through to the config file, then the default socket.
        let (host, source) =
            resolve(&env(None, Some("default")), None, None, Some("unix:///f")).unwrap();
        assert_eq!(
            (host.as_str(), source.as_str()),
            ("unix:///f", "from docker_host in t.yaml")
        );
        let (host, _) = resolve(&env(None, Some("default")), None, None, None).unwrap();
        assert_eq!(host, crate::engine::DEFAULT_HOST);
        assert!(matches!(
            resolve(&full, Some("unix:///a"), Some("ci"), None),
            Err(ConfigError::HostAndContext)
        ));
        assert!(resolve(&env(None, Some("gone")), None, None, None).is_err());
        // A context's TLS: its own folder, verified.
        let tls = env(None, Some("ci"))
            .engine_address(None, None, None, None)
            .unwrap()
            .tls
            .unwrap();
        assert!(tls.verify && tls.ca.is_some() && tls.cert.is_none());
    }

    #[test]
    fn tls_from_the_environment_as_the_docker_cli_reads_it() {
        let e = Environment {
            home: Some("/home/u".into()),
            ..Environment::default()
        };
        assert_eq!(e.engine_tls(), None);
        let e = Environment {
            docker_tls_verify: Some("1".into()),
            docker_cert_path: Some("/certs".into()),
            ..Environment::default()
        };
        let tls = e.engine_tls().unwrap();
        assert!(tls.verify);
        let e = Environment {
            docker_cert_path: Some("/certs".into()),
            ..Environment::default()
        };
        assert!(
            !e.engine_tls().unwrap().verify,
            "a cert path alone: TLS, unverified"
        );
    }

    #[test]
    fn store_is_per_image_then_top_level() {
        let file = parse(
            "store: true\nlayer_compression: zstd\nimages:\n  web:\n    store: false\n  api: {}\n",
        )
        .unwrap();
        let settings = Settings::resolve(None, &Environment::default(), file, None).unwrap();
        assert!(!settings.store_for("web"));
        assert!(settings.store_for("api"));
        assert!(settings.store_for("other"));
        assert_eq!(settings.layer_compression, Some(LayerCompressionName::Zstd));
        assert!(parse("layer_compression: brotli\n").is_err());
    }
}
