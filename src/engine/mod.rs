//! The Docker engine, through bollard: connect and negotiate, inspect, pull, build, export
//! (save) and import (load) image streams.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::{CreateImageOptionsBuilder, ImportImageOptionsBuilder};
use bollard::{API_DEFAULT_VERSION, Docker};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::io_error::IoError;

mod build;
mod dial;
mod filesync;
mod session;

use dial::Endpoint;
pub use dial::TlsFiles;

pub use build::{
    BadSecret, BuildOutput, BuildSpec, Builder, Discard, SecretSource, SecretSpec, Step, StepLog,
    StepStatus, Trace,
};

/// What can go wrong talking to a Docker engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot reach the Docker engine at {address} ({source_of}): {reason}. Start an engine \
         (dockerd), or point --host, --context, DOCKER_HOST or DOCKER_CONTEXT at a running one"
    )]
    Unreachable {
        address: String,
        /// Where the address came from (`from DOCKER_HOST`, …).
        source_of: String,
        reason: String,
    },

    #[error("{action}: {reason}")]
    Api {
        action: String,
        reason: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error("{action}: {reason}")]
    Protocol { action: String, reason: String },

    #[error(
        "image `{reference}` is not in the engine: build it with `toolbox build`, or pull it with \
         --pull if-not-present"
    )]
    ImageNotFound { reference: String },

    #[error("building `{reference}` failed{}: {message}", step.as_ref().map(|s| format!(" at `{s}`")).unwrap_or_default())]
    BuildFailed {
        reference: String,
        step: Option<String>,
        message: String,
    },

    #[error("secret `{id}`: {reason}")]
    Secret { id: String, reason: String },

    #[error(
        "secret `{id}` needs BuildKit, and this build uses the legacy builder: drop \
         --builder legacy (or DOCKER_BUILDKIT=0), or the secret"
    )]
    SecretNeedsBuildKit { id: String },

    #[error(
        "the Dockerfile {} is outside the build context {}: move it into the context, or \
         build from a context that holds it",
        dockerfile.display(),
        context.display()
    )]
    DockerfileOutside {
        dockerfile: PathBuf,
        context: PathBuf,
    },

    #[error(transparent)]
    Context(#[from] crate::context::ContextError),

    #[error(transparent)]
    Io(#[from] IoError),
}

type Error = EngineError;
type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The engine's address when neither `DOCKER_HOST` nor the config file names one.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// The bound on a save or a load: the engine answers those only when the whole image has
/// streamed, so the API timeout cannot apply to them.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// What to do about an image the engine may not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Never pull (the default).
    #[default]
    Never,
    /// Pull when the engine does not have the reference.
    IfNotPresent,
    /// Always pull first.
    Always,
}

impl PullPolicy {
    /// The policies' names, as `--pull` spells them.
    pub const NAMES: [&'static str; 3] = ["never", "if-not-present", "always"];

    /// The policy's name.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Never => "never",
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Always => "always",
        }
    }
}

/// A name that is not a [`PullPolicy`].
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a pull policy: use never, if-not-present or always")]
pub struct UnknownPullPolicy(pub String);

impl std::str::FromStr for PullPolicy {
    type Err = UnknownPullPolicy;

    fn from_str(s: &str) -> std::result::Result<Self, UnknownPullPolicy> {
        match s {
            "never" => Ok(PullPolicy::Never),
            "if-not-present" => Ok(PullPolicy::IfNotPresent),
            "always" => Ok(PullPolicy::Always),
            _ => Err(UnknownPullPolicy(s.to_string())),
        }
    }
}

impl std::fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection to a Docker engine.
#[derive(Debug, Clone)]
pub struct Engine {
    /// For requests answered at once; bounded by the API timeout.
    api: Docker,
    /// For saves and loads, whose answers take as long as the image takes to stream.
    transfer: Docker,
    address: String,
    /// Where raw exchanges (BuildKit's session and build) connect.
    endpoint: Arc<Endpoint>,
}

/// What the engine says of an image.
#[derive(Debug, Clone)]
pub struct ImageFacts {
    /// `sha256:<64 hex>`.
    pub id: String,
    /// RFC 3339.
    pub created: Option<String>,
    /// The image's size as the engine gives it (about what `docker save` streams).
    pub size: Option<u64>,
    /// The layers' diff IDs (the config's `rootfs.diff_ids`), bottom first.
    pub layers: Vec<String>,
}

/// Why the engine could not be reached, in the system's words (never the client library's):
/// the I/O error underneath, a missing socket, a timeout, or the HTTP answer of something that
/// is not a Docker engine.
fn unreachable_reason(e: &bollard::errors::Error, secs: u64) -> String {
    use bollard::errors::Error as B;
    match e {
        B::SocketNotFoundError(path) => format!("no socket at {path}"),
        B::RequestTimeoutError => format!("no answer within {secs} s"),
        B::DockerResponseServerError {
            status_code,
            message,
        } => format!("it answered HTTP {status_code} ({message}): is it a Docker engine?"),
        other => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(other);
            while let Some(c) = cause {
                if let Some(io) = c.downcast_ref::<std::io::Error>() {
                    return match io.kind() {
                        // The connection's own words name the socket.
                        std::io::ErrorKind::NotFound if io.get_ref().is_some() => io.to_string(),
                        std::io::ErrorKind::NotFound => "no such socket".to_string(),
                        std::io::ErrorKind::ConnectionRefused => {
                            "connection refused: nothing listens there".to_string()
                        }
                        std::io::ErrorKind::PermissionDenied => {
                            "permission denied: run as a user allowed to use it".to_string()
                        }
                        _ => io.to_string(),
                    };
                }
                cause = c.source();
            }
            "the connection failed before the engine answered".to_string()
        }
    }
}

/// An engine's address, where it came from, and its TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineAddress {
    /// `unix:///path`, `/path`, `tcp://host:port`, `https://host:port`, `ssh://[user@]host`.
    pub host: String,
    /// TLS with these files (`DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, or a context's).
    pub tls: Option<TlsFiles>,
    /// Where the address came from, in words (`from DOCKER_HOST`, `from context `ci` in …`).
    pub source: String,
}

impl EngineAddress {
    /// The default socket.
    pub fn default_socket() -> EngineAddress {
        EngineAddress {
            host: DEFAULT_HOST.to_string(),
            tls: None,
            source: "the default address".to_string(),
        }
    }
}

impl Engine {
    /// Connects to the engine at `address`, negotiates the API version, and checks that it
    /// answers within `api_timeout`.
    pub async fn connect(address: &EngineAddress, api_timeout: Duration) -> Result<Engine> {
        let secs = api_timeout.as_secs().max(1);
        let unreachable = |reason: String| Error::Unreachable {
            address: address.host.clone(),
            source_of: address.source.clone(),
            reason,
        };
        let failed = |e: bollard::errors::Error| unreachable(unreachable_reason(&e, secs));
        let endpoint =
            Arc::new(Endpoint::new(&address.host, address.tls.as_ref()).map_err(unreachable)?);
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(dial::Connector(endpoint.clone()));
        let transport = move |request: bollard::BollardRequest| {
            let client = client.clone();
            async move {
                client
                    .request(request)
                    .await
                    .map_err(bollard::errors::Error::from)
            }
        };
        let docker = Docker::connect_with_custom_transport(
            transport,
            Some("http://docker.engine"),
            secs,
            API_DEFAULT_VERSION,
        )
        .map_err(failed)?;
        let api = docker.negotiate_version().await.map_err(failed)?;
        api.ping().await.map_err(failed)?;
        let transfer = api.clone().with_timeout(TRANSFER_TIMEOUT);
        Ok(Engine {
            api,
            transfer,
            address: address.host.clone(),
            endpoint,
        })
    }

    /// The address connected to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The full ID (`sha256:<64 hex>`) of `reference` (a name, an ID or a unique ID prefix);
    /// `None` when the engine does not have it.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>> {
        Ok(self.image(reference).await?.map(|i| i.id))
    }

    /// Whether the engine keeps images in the containerd image store (where an image's ID is
    /// its manifest's or index's digest, and layers are kept compressed).
    pub async fn uses_containerd_store(&self) -> Result<bool> {
        let info = self
            .api
            .info()
            .await
            .map_err(|e| engine_error("asking the engine about itself".into(), e))?;
        Ok(info.driver_status.unwrap_or_default().iter().any(|pair| {
            pair.first().is_some_and(|k| k == "driver-type")
                && pair
                    .get(1)
                    .is_some_and(|v| v.contains("io.containerd.snapshotter"))
        }))
    }

    /// The ID and creation time of `reference`; `None` when the engine does not have it.
    pub async fn image(&self, reference: &str) -> Result<Option<ImageFacts>> {
        match self.api.inspect_image(reference).await {
            Ok(inspect) => {
                let id = inspect.id.ok_or_else(|| Error::Protocol {
                    action: format!("inspecting `{reference}`"),
                    reason: "the engine gave no ID".into(),
                })?;
                Ok(Some(ImageFacts {
                    id,
                    size: inspect.size.and_then(|s| u64::try_from(s).ok()),
                    created: inspect.created,
                    layers: inspect.root_fs.and_then(|r| r.layers).unwrap_or_default(),
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(engine_error(format!("inspecting `{reference}`"), e)),
        }
    }

    /// The IDs of the engine's images, those tagged in `repository` first; at most `limit`.
    pub async fn image_ids(&self, repository: &str, limit: usize) -> Result<Vec<String>> {
        let options = bollard::query_parameters::ListImagesOptionsBuilder::default().build();
        let listed = self
            .api
            .list_images(Some(options))
            .await
            .map_err(|e| engine_error("listing the engine's images".into(), e))?;
        let in_repository = |tags: &[String]| {
            tags.iter().any(|t| {
                t.rsplit_once(':').is_some_and(|(repo, _)| {
                    repo == repository || repo.ends_with(&format!("/{repository}"))
                })
            })
        };
        let mut ids: Vec<(bool, String)> = listed
            .into_iter()
            .map(|i| (!in_repository(&i.repo_tags), i.id))
            .collect();
        ids.sort_by_key(|(other, _)| *other);
        let mut seen = std::collections::HashSet::new();
        Ok(ids
            .into_iter()
            .map(|(_, id)| id)
            .filter(|id| seen.insert(id.clone()))
            .take(limit)
            .collect())
    }

    /// The layers (diff IDs, bottom first) of the engine's images, those tagged in
    /// `repository` first; at most `limit` images are inspected. An image gone between the
    /// listing and its inspection is passed over.
    pub async fn image_layers(&self, repository: &str, limit: usize) -> Result<Vec<Vec<String>>> {
        let mut layers = Vec::new();
        for id in self.image_ids(repository, limit).await? {
            if let Some(facts) = self.image(&id).await? {
                layers.push(facts.layers);
            }
        }
        Ok(layers)
    }

    /// Pulls `reference` (`repository:tag`) from its registry.
    pub async fn pull(&self, reference: &str) -> Result<()> {
        let (repository, tag) = split_reference(reference);
        let options = CreateImageOptionsBuilder::default()
            .from_image(repository)
            .tag(tag)
            .build();
        let mut progress = self.transfer.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            let info = item.map_err(|e| engine_error(format!("pulling `{reference}`"), e))?;
            if let Some(detail) = info.error_detail {
                return Err(Error::Protocol {
                    action: format!("pulling `{reference}`"),
                    reason: detail.message.unwrap_or_default(),
                });
            }
        }
        Ok(())
    }

    /// The `docker save` stream of `reference`.
    pub fn export(&self, reference: &str) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
        let action = format!("saving `{reference}`");
        self.transfer
            .export_image(reference)
            .map(move |item| item.map_err(|e| engine_error(action.clone(), e)))
    }

    /// Loads a `docker save` tar streamed from `body` and returns what the engine said it
    /// loaded: `Loaded image: REPO:TAG` lines give references, `Loaded image ID: sha256:…`
    /// lines give IDs.
    pub async fn import<S>(&self, body: S) -> Result<Vec<String>>
    where
        S: Stream<Item = io::Result<Bytes>> + Send + 'static,
    {
        let options = ImportImageOptionsBuilder::default().quiet(true).build();
        let mut stream = self.transfer.import_image_stream(options, body, None);
        let mut loaded = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| engine_error("loading the image".into(), e))?;
            if let Some(detail) = info.error_detail {
                return Err(Error::Protocol {
                    action: "loading the image".into(),
                    reason: detail.message.unwrap_or_default(),
                });
            }
            for line in info.stream.iter().flat_map(|s| s.lines()) {
                if let Some(what) = line
                    .strip_prefix("Loaded image ID: ")
                    .or_else(|| line.strip_prefix("Loaded image: "))
                {
                    loaded.push(what.trim().to_string());
                }
            }
        }
        Ok(loaded)
    }
}

/// Splits `repository:tag` (a `:` in a registry's host:port is not a tag separator).
fn split_reference(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

fn engine_error(action: String, e: bollard::errors::Error) -> Error {
    use bollard::errors::Error as B;
    let reason = match &e {
        B::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        B::RequestTimeoutError => {
            "the engine did not answer in time (TOOLBOX_DOCKER_API_TIMEOUT)".into()
        }
        B::DockerStreamError { error } => error.clone(),
        other => other.to_string(),
    };
    Error::Api {
        action,
        reason,
        source: e,
    }
}

fn io_error(path: impl AsRef<Path>, e: io::Error) -> Error {
    IoError::new(path, e).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies_parse_from_their_names() {
        for name in PullPolicy::NAMES {
            let policy: PullPolicy = name.parse().unwrap();
            assert_eq!(policy.to_string(), name);
        }
        assert_eq!(
            "if-not-present".parse::<PullPolicy>().unwrap(),
            PullPolicy::IfNotPresent
        );
        let err = "sometimes".parse::<PullPolicy>().unwrap_err().to_string();
        assert!(err.contains("sometimes") && err.contains("always"), "{err}");
    }

    #[test]
    fn references_split_at_the_tag() {
        assert_eq!(split_reference("web:1.0"), ("web", "1.0"));
        assert_eq!(
            split_reference("registry.local:5000/team/web:1.0"),
            ("registry.local:5000/team/web", "1.0")
        );
        assert_eq!(
            split_reference("registry.local:5000/team/web"),
            ("registry.local:5000/team/web", "latest")
        );
    }
}
