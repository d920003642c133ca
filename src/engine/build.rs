//! Builds: the context planned and streamed as a tar, then either the legacy builder (its text
//! output passed on) or BuildKit (a session serving the build's secrets, and the builder's
//! trace decoded into [`Trace`]s).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bollard::query_parameters::{BuildImageOptions, BuildImageOptionsBuilder, BuilderVersion};
use futures_util::StreamExt;
use prost::Message as _;

use super::dial::{self, Endpoint};
use super::filesync::{self, FileSyncService};
use super::session::Session;
use super::{Engine, EngineError as Error, Result, engine_error, io_error};
use crate::pipe;
use crate::progress::Reporter;

/// Which builder runs a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// BuildKit, through a session with the engine.
    BuildKit,
    /// The legacy builder (deprecated since Docker 23).
    Legacy,
}

impl Builder {
    /// The builders' names, as `--builder` spells them.
    pub const NAMES: [&'static str; 2] = ["buildkit", "legacy"];

    /// The builder's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Builder::BuildKit => "buildkit",
            Builder::Legacy => "legacy",
        }
    }

    /// The builder `DOCKER_BUILDKIT` asks for, read as the docker CLI reads it (a Go boolean:
    /// 1, t, true, 0, f, false in any of Go's spellings).
    pub fn from_docker_buildkit(value: &str) -> Option<Builder> {
        match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(Builder::BuildKit),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(Builder::Legacy),
            _ => None,
        }
    }
}

impl std::str::FromStr for Builder {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "buildkit" => Ok(Builder::BuildKit),
            "legacy" => Ok(Builder::Legacy),
            _ => Err(format!("`{s}` is not a builder: use buildkit or legacy")),
        }
    }
}

/// Where a secret's content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

/// A secret for `RUN --mount=type=secret,id=ID`: its ID and where its content comes from
/// (never the content itself, so that no value can reach a log through this type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub id: String,
    pub source: SecretSource,
}

/// A `--secret` that cannot be read as one.
#[derive(Debug, thiserror::Error)]
#[error("`{spec}` is not a secret: {reason} (use id=ID,src=FILE or id=ID,env=VAR)")]
pub struct BadSecret {
    spec: String,
    reason: String,
}

impl std::str::FromStr for SecretSpec {
    type Err = BadSecret;

    /// Docker's syntax: comma-separated `id=`, `src=`/`source=`, `env=`, `type=file|env`.
    /// With neither a file nor a variable, the variable named like the ID is read if set,
    /// else the file named like it (as BuildKit does).
    fn from_str(spec: &str) -> std::result::Result<Self, BadSecret> {
        let bad = |reason: String| BadSecret {
            spec: spec.to_string(),
            reason,
        };
        let (mut id, mut file, mut env, mut kind) = (None, None, None, None);
        for field in spec.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("`{field}` is not KEY=VALUE")))?;
            match key.to_ascii_lowercase().as_str() {
                "id" => id = Some(value.to_string()),
                "src" | "source" => file = Some(value.to_string()),
                "env" => env = Some(value.to_string()),
                "type" if value == "file" || value == "env" => kind = Some(value.to_string()),
                "type" => return Err(bad(format!("type `{value}` is not file or env"))),
                other => return Err(bad(format!("`{other}` is not a secret's key"))),
            }
        }
        if kind.as_deref() == Some("env") && env.is_none() {
            env = file.take();
        }
        let id = match id.or_else(|| env.clone()).or_else(|| {
            file.as_ref().and_then(|f| {
                Path::new(f)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
            })
        }) {
            Some(id) if !id.is_empty() => id,
            _ => return Err(bad("it has no id".into())),
        };
        let source = match (file, env) {
            (Some(_), Some(_)) => return Err(bad("it names both a file and a variable".into())),
            (Some(f), None) if !f.is_empty() => SecretSource::File(PathBuf::from(f)),
            (None, Some(v)) if !v.is_empty() => SecretSource::Env(v),
            (None, None) if std::env::var_os(&id).is_some() => SecretSource::Env(id.clone()),
            (None, None) => SecretSource::File(PathBuf::from(&id)),
            _ => return Err(bad("its source is empty".into())),
        };
        Ok(SecretSpec { id, source })
    }
}

impl SecretSpec {
    /// The secret's content, read now (before anything is sent to the engine).
    fn read(&self) -> Result<Vec<u8>> {
        match &self.source {
            SecretSource::File(path) => std::fs::read(path).map_err(|e| Error::Secret {
                id: self.id.clone(),
                reason: format!("cannot read {}: {e}", path.display()),
            }),
            SecretSource::Env(var) => std::env::var_os(var)
                .map(|v| v.into_encoded_bytes())
                .ok_or_else(|| Error::Secret {
                    id: self.id.clone(),
                    reason: format!("the environment variable {var} is not set"),
                }),
        }
    }
}

/// What `build` needs.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile, when not `Dockerfile` in the context.
    pub dockerfile: Option<PathBuf>,
    pub build_args: HashMap<String, String>,
    pub no_cache: bool,
    /// The reference to tag, `<repository>:<tag>`.
    pub reference: String,
    /// The stage to build (the last one when `None`).
    pub target: Option<String>,
    /// Labels to set on the image.
    pub labels: HashMap<String, String>,
    /// The network of `RUN` steps (`default`, `none`, `host`).
    pub network: Option<String>,
    /// Ask the engine to refresh base images first.
    pub pull: bool,
    /// The platform to build for (`os/arch[/variant]`; the engine's when `None`).
    pub platform: Option<String>,
    /// The builder; BuildKit when the engine offers it, when `None`.
    pub builder: Option<Builder>,
    /// Secrets for `RUN --mount=type=secret` (BuildKit only).
    pub secrets: Vec<SecretSpec>,
}

/// Where a build's output goes as it arrives.
pub trait BuildOutput: Send {
    /// Which builder runs the build (said once, before anything else).
    fn builder(&mut self, _builder: Builder) {}
    /// A fragment of the legacy builder's text output.
    fn text(&mut self, fragment: &str);
    /// A piece of BuildKit's trace.
    fn trace(&mut self, trace: &Trace);
}

/// A piece of BuildKit's trace: steps that started, finished or failed, their statuses
/// (transfers) and their output.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub steps: Vec<Step>,
    pub statuses: Vec<StepStatus>,
    pub logs: Vec<StepLog>,
    pub warnings: Vec<String>,
}

/// A step of a BuildKit build (a vertex of its graph).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What identifies the step across pieces of the trace.
    pub digest: String,
    /// What it does, e.g. `[build 2/3] RUN make`.
    pub name: String,
    /// Its result came from the build cache.
    pub cached: bool,
    pub started: Option<SystemTime>,
    pub completed: Option<SystemTime>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The progress of one part of a step, e.g. a transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStatus {
    pub step: String,
    pub id: String,
    pub current: i64,
    pub total: i64,
    pub completed: bool,
}

/// Output of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepLog {
    pub step: String,
    pub at: Option<SystemTime>,
    pub data: Vec<u8>,
}

/// An output that discards everything.
pub struct Discard;

impl BuildOutput for Discard {
    fn text(&mut self, _fragment: &str) {}
    fn trace(&mut self, _trace: &Trace) {}
}

/// The lines of a failed step's output the error repeats.
const FAILED_STEP_LINES: usize = 10;

impl Engine {
    /// Whether the engine offers BuildKit (its `_ping` answers `Builder-Version: 2`).
    pub async fn offers_buildkit(&self) -> Result<bool> {
        let request = http::Request::get(format!("{}/_ping", self.api_prefix()))
            .body(dial::empty())
            .map_err(|e| Error::Protocol {
                action: "asking the engine for its builder".into(),
                reason: e.to_string(),
            })?;
        let response = self
            .endpoint()?
            .send(request)
            .await
            .map_err(|e| Error::Protocol {
                action: "asking the engine for its builder".into(),
                reason: e.to_string(),
            })?;
        Ok(response
            .headers()
            .get("Builder-Version")
            .is_some_and(|v| v.as_bytes() == b"2"))
    }

    /// Builds an image from `spec`, passing its output to `output` as it arrives, and returns
    /// the image's full ID as the engine shows it. Everything the build needs (the context's
    /// files, the secrets) is found before anything is sent; the context streams to the engine
    /// as a tar, counted on `upload`. Intermediate containers are removed even when the build
    /// fails.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        output: &mut dyn BuildOutput,
        upload: Arc<dyn Reporter>,
    ) -> Result<String> {
        let builder = match spec.builder {
            // Engines since 18.09 run BuildKit builds when asked, even those (such as 20.10
            // without `features.buildkit`) that do not offer it by default.
            Some(Builder::BuildKit) => Builder::BuildKit,
            Some(Builder::Legacy) => Builder::Legacy,
            None if self.offers_buildkit().await? => Builder::BuildKit,
            None => Builder::Legacy,
        };
        if builder == Builder::Legacy
            && let Some(secret) = spec.secrets.first()
        {
            return Err(Error::SecretNeedsBuildKit {
                id: secret.id.clone(),
            });
        }
        let mut secrets = HashMap::new();
        for secret in &spec.secrets {
            secrets.insert(secret.id.clone(), secret.read()?);
        }
        output.builder(builder);
        let outcome = match builder {
            Builder::Legacy => {
                let (body, dockerfile_in_tar, tar_task) = send_context(spec, upload)?;
                let options = options(spec, &dockerfile_in_tar, builder);
                let outcome = self.build_legacy(options, body, output).await;
                // A context that could not be read explains a failure better than what the
                // engine saw.
                match tar_task.await {
                    Ok(Err(e)) if !matches!(outcome, Ok(Some(_))) => return Err(e),
                    _ => {}
                }
                outcome
            }
            Builder::BuildKit => {
                let (offered, dockerfile_name) = offer_context(spec, upload.clone())?;
                let options = options(spec, &dockerfile_name, builder);
                let outcome = self.build_buildkit(options, offered, secrets, output).await;
                upload.finish();
                outcome
            }
        };
        let id = match outcome {
            Ok(Some(id)) => id,
            Ok(None) => {
                return Err(Error::Protocol {
                    action: format!("building `{}`", spec.reference),
                    reason: "the engine reported no image ID".into(),
                });
            }
            Err(Failure { step, message }) => {
                return Err(Error::BuildFailed {
                    reference: spec.reference.clone(),
                    step,
                    message,
                });
            }
        };
        // The ID as the engine shows it (`docker images`), whatever the store and builder.
        let shown = match self.image_id(&id).await? {
            Some(shown) => Some(shown),
            None => self.image_id(&spec.reference).await?,
        };
        shown.ok_or_else(|| Error::Protocol {
            action: format!("building `{}`", spec.reference),
            reason: format!("the built image {id} is not in the engine"),
        })
    }

    /// The legacy builder: its text output passed on; the ID from its `aux` message or its
    /// `Successfully built` line.
    async fn build_legacy(
        &self,
        options: BuildImageOptions,
        body: ContextBody,
        output: &mut dyn BuildOutput,
    ) -> Result<Option<String>, Failure> {
        let mut stream =
            self.transfer
                .build_image(options, None, Some(bollard::body_try_stream(body)));
        let mut log = BuildLog::default();
        let mut aux_id = None;
        while let Some(item) = stream.next().await {
            let message = match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        output.text(&text);
                        log.push(&text);
                    }
                    if let Some(aux) = info.aux.and_then(|a| a.id) {
                        aux_id = Some(aux);
                    }
                    match info.error_detail {
                        Some(detail) => detail.message.unwrap_or_default(),
                        None => continue,
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => error,
                Err(e) => engine_error("building".into(), e).to_string(),
            };
            return Err(Failure {
                step: log.last_step.clone(),
                message: with_tail(message.trim(), &log.tail),
            });
        }
        Ok(aux_id.or(log.built))
    }

    /// BuildKit: a session serving `secrets`, the build request on a connection of its own,
    /// its trace decoded and passed on; the ID from its `moby.image.id` message.
    async fn build_buildkit(
        &self,
        options: BuildImageOptions,
        files: FileSyncService,
        secrets: HashMap<String, Vec<u8>>,
        output: &mut dyn BuildOutput,
    ) -> Result<Option<String>, Failure> {
        let failed = |message: String| Failure {
            step: None,
            message,
        };
        let endpoint = self.endpoint().map_err(|e| failed(e.to_string()))?;
        let api = self.api_prefix();
        let session = Session::open(&endpoint, &api, secrets, files)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let mut query = serde_urlencoded::to_string(&options).map_err(|e| failed(e.to_string()))?;
        query.push_str("&remote=client-session&session=");
        query.push_str(session.id());
        let request = http::Request::post(format!("{api}/build?{query}"))
            .body(dial::empty())
            .map_err(|e| failed(e.to_string()))?;
        let response = endpoint
            .send(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let mut chunks = dial::chunks(response.into_body());
        let mut lines = Lines::default();
        let mut steps = Steps::default();
        let mut id = None;
        let mut error = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| failed(format!("the build's answer broke off: {e}")))?;
            for line in lines.push(&chunk) {
                if !status.is_success() {
                    error = Some(error_message(&line).unwrap_or(line));
                    continue;
                }
                match serde_json::from_str::<BuildMessage>(&line) {
                    Ok(message) => {
                        if let Some(e) = message.error_message() {
                            error = Some(e);
                        }
                        match (message.id.as_deref(), message.aux) {
                            (Some("moby.buildkit.trace"), Some(serde_json::Value::String(b64))) => {
                                if let Some(trace) = decode_trace(&b64) {
                                    steps.record(&trace);
                                    output.trace(&trace);
                                }
                            }
                            (Some("moby.image.id"), Some(aux)) => {
                                id = aux.get("ID").and_then(|v| v.as_str()).map(str::to_string);
                            }
                            _ => {}
                        }
                        if let Some(text) = message.stream {
                            output.text(&text);
                        }
                    }
                    Err(_) => output.text(&format!("{line}\n")),
                }
            }
        }
        drop(session);
        if let Some(message) = error.or_else(|| {
            (!status.is_success()).then(|| format!("the engine answered HTTP {status}"))
        }) {
            return Err(steps.failure(message));
        }
        Ok(id)
    }

    /// Where the engine listens, for raw exchanges.
    fn endpoint(&self) -> Result<Endpoint> {
        Ok(self.endpoint.as_ref().clone())
    }

    /// `/v1.NN`, the API version negotiated with the engine.
    fn api_prefix(&self) -> String {
        let v = self.api.client_version();
        format!("/v{}.{}", v.major_version, v.minor_version)
    }
}

/// Why a build failed: the step, and the message with the step's last lines of output.
struct Failure {
    step: Option<String>,
    message: String,
}

/// The build's query parameters, for either builder.
fn options(spec: &BuildSpec, dockerfile_in_tar: &str, builder: Builder) -> BuildImageOptions {
    let mut options = BuildImageOptionsBuilder::default()
        .dockerfile(dockerfile_in_tar)
        .t(&spec.reference)
        .nocache(spec.no_cache)
        .rm(true)
        .forcerm(true)
        .buildargs(&spec.build_args)
        .labels(&spec.labels)
        .version(match builder {
            Builder::BuildKit => BuilderVersion::BuilderBuildKit,
            Builder::Legacy => BuilderVersion::BuilderV1,
        });
    if let Some(target) = &spec.target {
        options = options.target(target);
    }
    if let Some(network) = &spec.network {
        options = options.networkmode(network);
    }
    if spec.pull {
        options = options.pull("1");
    }
    if let Some(platform) = &spec.platform {
        options = options.platform(platform);
    }
    options.build()
}

type TarTask = tokio::task::JoinHandle<Result<()>>;

/// Plans the context for BuildKit (what `.dockerignore` leaves out; every file opened) and
/// the folders the session offers: the context, and the Dockerfile with its own ignore file.
/// Also returns the Dockerfile's name in its folder.
fn offer_context(spec: &BuildSpec, upload: Arc<dyn Reporter>) -> Result<(FileSyncService, String)> {
    let context = spec.context.clone();
    if !context.is_dir() {
        return Err(io_error(
            &context,
            io::Error::new(
                io::ErrorKind::NotFound,
                "the build context is not a directory",
            ),
        ));
    }
    let dockerfile_in_tar = dockerfile_placement(&context, spec.dockerfile.as_deref())?;
    let dockerfile = context.join(&dockerfile_in_tar);
    let ignore = crate::context::patterns(
        &context,
        spec.dockerfile.as_deref(),
        &[&dockerfile_in_tar, crate::context::IGNORE_FILE],
    )?;
    let plan = crate::context::plan(&context, &ignore)?;
    upload.start(Some(plan.bytes));
    let name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let mut beside = vec![filesync::Entry {
        disk: dockerfile.clone(),
        name: name.clone(),
        dir: false,
    }];
    let own_ignore = dockerfile.with_file_name(format!("{name}.dockerignore"));
    if own_ignore.is_file() {
        beside.push(filesync::Entry {
            disk: own_ignore,
            name: format!("{name}.dockerignore"),
            dir: false,
        });
    }
    beside.sort_by(|a, b| a.name.cmp(&b.name));
    let dirs = HashMap::from([
        (
            filesync::CONTEXT.to_string(),
            Arc::new(filesync::context_entries(&context, &plan)),
        ),
        (filesync::DOCKERFILE.to_string(), Arc::new(beside)),
    ]);
    Ok((FileSyncService { dirs, upload }, name))
}

/// The context's tar, as it streams to the engine.
type ContextBody =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = io::Result<bytes::Bytes>> + Send>>;

/// Plans the context (what `.dockerignore` leaves out; every file opened) and starts streaming
/// it as a tar: the body, the Dockerfile's name in the tar, and the task writing it.
fn send_context(
    spec: &BuildSpec,
    upload: Arc<dyn Reporter>,
) -> Result<(ContextBody, String, TarTask)> {
    let context = spec.context.clone();
    if !context.is_dir() {
        return Err(io_error(
            &context,
            io::Error::new(
                io::ErrorKind::NotFound,
                "the build context is not a directory",
            ),
        ));
    }
    let dockerfile_in_tar = dockerfile_placement(&context, spec.dockerfile.as_deref())?;
    // The Dockerfile and the ignore file always go.
    let ignore = crate::context::patterns(
        &context,
        spec.dockerfile.as_deref(),
        &[&dockerfile_in_tar, crate::context::IGNORE_FILE],
    )?;
    let plan = crate::context::plan(&context, &ignore)?;
    let (writer, body) = pipe::from_writer();
    let task = tokio::task::spawn_blocking(move || {
        upload.start(Some(plan.bytes));
        let sent = write_context(writer, &context, &plan, upload.as_ref());
        upload.finish();
        sent
    });
    Ok((Box::pin(body), dockerfile_in_tar, task))
}

/// The Dockerfile's path inside the context (`Dockerfile` when none is named). A Dockerfile
/// that does not exist, or lies outside the context, is an error before anything is sent.
fn dockerfile_placement(context: &Path, dockerfile: Option<&Path>) -> Result<String> {
    let Some(dockerfile) = dockerfile else {
        let default = context.join("Dockerfile");
        if !default.is_file() {
            return Err(io_error(
                &default,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "no Dockerfile in the build context: add one, or name it with --dockerfile",
                ),
            ));
        }
        return Ok("Dockerfile".into());
    };
    if !dockerfile.is_file() {
        return Err(io_error(
            dockerfile,
            io::Error::new(io::ErrorKind::NotFound, "no such Dockerfile"),
        ));
    }
    let canonical = |p: &Path| p.canonicalize().map_err(|e| io_error(p, e));
    let (file, inside) = (canonical(dockerfile)?, canonical(context)?);
    match file.strip_prefix(&inside) {
        Ok(relative) => Ok(relative.to_string_lossy().into_owned()),
        Err(_) => Err(Error::DockerfileOutside {
            dockerfile: dockerfile.to_path_buf(),
            context: context.to_path_buf(),
        }),
    }
}

/// Writes the build context as a tar into `writer`: what `plan` lists (links kept as links),
/// counting the files' bytes on `upload`.
fn write_context(
    writer: pipe::ChannelWriter,
    context: &Path,
    plan: &crate::context::Plan,
    upload: &dyn Reporter,
) -> Result<()> {
    let mut tar = tar::Builder::new(writer);
    tar.follow_symlinks(false);
    crate::context::append(&mut tar, plan, &mut |n| upload.advance(n))?;
    match tar.into_inner() {
        Ok(writer) => writer.finish().map_err(|e| io_error(context, e)),
        Err(e) => Err(io_error(context, e)),
    }
}

/// `message`, then the last lines of output before it, indented.
fn with_tail<'a>(message: &str, tail: impl IntoIterator<Item = &'a String>) -> String {
    let mut text = message.to_string();
    let lines: Vec<&String> = tail.into_iter().collect();
    if !lines.is_empty() {
        text.push_str("\n  its last lines of output:");
        for line in lines {
            text.push_str("\n    ");
            text.push_str(line);
        }
    }
    text
}

/// What the legacy build output says: the step running last, its last lines, and the ID of a
/// `Successfully built` line. Output arrives in fragments, so lines are put back together.
#[derive(Debug, Default)]
struct BuildLog {
    partial: String,
    last_step: Option<String>,
    tail: VecDeque<String>,
    built: Option<String>,
}

impl BuildLog {
    fn push(&mut self, fragment: &str) {
        self.partial.push_str(fragment);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            let line = line.trim_end();
            if line.starts_with("Step ") {
                self.last_step = Some(line.to_string());
                self.tail.clear();
            } else if let Some(id) = line.strip_prefix("Successfully built ") {
                self.built = Some(id.trim().to_string());
            } else if !line.is_empty() && !line.starts_with(" ---> ") {
                if self.tail.len() == FAILED_STEP_LINES {
                    self.tail.pop_front();
                }
                self.tail.push_back(line.to_string());
            }
        }
    }
}

/// Splits a byte stream into lines (messages are one JSON document per line).
#[derive(Debug, Default)]
struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    fn push(&mut self, chunk: &[u8]) -> Vec<String> {
        self.partial.extend_from_slice(chunk);
        let mut lines = Vec::new();
        while let Some(end) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim().to_string();
            if !line.is_empty() {
                lines.push(line);
            }
        }
        lines
    }
}

/// A message of the build's answer.
#[derive(Debug, serde::Deserialize)]
struct BuildMessage {
    id: Option<String>,
    aux: Option<serde_json::Value>,
    stream: Option<String>,
    error: Option<String>,
    #[serde(rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Debug, serde::Deserialize)]
struct ErrorDetail {
    message: Option<String>,
}

impl BuildMessage {
    fn error_message(&self) -> Option<String> {
        self.error_detail
            .as_ref()
            .and_then(|d| d.message.clone())
            .or_else(|| self.error.clone())
    }
}

/// The `message` of an error answer (`{"message": …}`).
fn error_message(body: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("message")?
        .as_str()
        .map(str::to_string)
}

/// A `moby.buildkit.trace` message: base64 of a BuildKit `StatusResponse`.
fn decode_trace(b64: &str) -> Option<Trace> {
    use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let status = StatusResponse::decode(bytes.as_slice()).ok()?;
    let time = |t: Option<bollard_buildkit_proto::google::protobuf::Timestamp>| {
        t.and_then(|t| {
            let secs = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        })
    };
    Some(Trace {
        steps: status
            .vertexes
            .into_iter()
            .map(|v| Step {
                digest: v.digest,
                name: v.name,
                cached: v.cached,
                started: time(v.started),
                completed: time(v.completed),
                error: (!v.error.is_empty()).then_some(v.error),
            })
            .collect(),
        statuses: status
            .statuses
            .into_iter()
            .map(|s| StepStatus {
                step: s.vertex,
                id: s.id,
                current: s.current,
                total: s.total,
                completed: s.completed.is_some(),
            })
            .collect(),
        logs: status
            .logs
            .into_iter()
            .map(|l| StepLog {
                step: l.vertex,
                at: time(l.timestamp),
                data: l.msg,
            })
            .collect(),
        warnings: status
            .warnings
            .into_iter()
            .map(|w| String::from_utf8_lossy(&w.short).into_owned())
            .collect(),
    })
}

/// What the trace said of each step, for the error when one fails: its name, its error and its
/// last lines of output.
#[derive(Debug, Default)]
struct Steps {
    names: HashMap<String, String>,
    tails: HashMap<String, (VecDeque<String>, String)>,
    failed: Option<(String, String)>,
}

impl Steps {
    fn record(&mut self, trace: &Trace) {
        for step in &trace.steps {
            self.names.insert(step.digest.clone(), step.name.clone());
            if let Some(error) = &step.error
                && self.failed.is_none()
                && !error.contains("context canceled")
            {
                self.failed = Some((step.digest.clone(), error.clone()));
            }
        }
        for log in &trace.logs {
            let (tail, partial) = self.tails.entry(log.step.clone()).or_default();
            partial.push_str(&String::from_utf8_lossy(&log.data));
            while let Some(end) = partial.find('\n') {
                let line: String = partial.drain(..=end).collect();
                let line = line.trim_end().to_string();
                if tail.len() == FAILED_STEP_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }

    /// The failure: the failed step (if the trace named one) with its last lines; else the
    /// engine's message alone.
    fn failure(&self, message: String) -> Failure {
        let Some((digest, error)) = &self.failed else {
            return Failure {
                step: None,
                message: message.trim().to_string(),
            };
        };
        let mut tail: Vec<String> = Vec::new();
        if let Some((lines, partial)) = self.tails.get(digest) {
            tail.extend(lines.iter().cloned());
            if !partial.trim().is_empty() {
                tail.push(partial.trim_end().to_string());
            }
        }
        let skip = tail.len().saturating_sub(FAILED_STEP_LINES);
        Failure {
            step: self.names.get(digest).cloned(),
            message: with_tail(error.trim(), &tail[skip..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_log_reassembles_fragments() {
        let mut log = BuildLog::default();
        for fragment in [
            "Step 1/2 : FROM scr",
            "atch\n ---> \nStep 2/2 : COPY a /\n",
            "Successfully built 0123",
            "456789ab\n",
        ] {
            log.push(fragment);
        }
        assert_eq!(log.last_step.as_deref(), Some("Step 2/2 : COPY a /"));
        assert_eq!(log.built.as_deref(), Some("0123456789ab"));
        log.push("Successfully built ffffffffffff\n");
        assert_eq!(
            log.built.as_deref(),
            Some("ffffffffffff"),
            "the last line wins"
        );
    }

    #[test]
    fn build_log_keeps_the_last_lines_of_the_step() {
        let mut log = BuildLog::default();
        log.push("Step 1/2 : RUN a\nold\nStep 2/2 : RUN b\n ---> Running in 1\n");
        for i in 0..15 {
            log.push(&format!("line {i}\n"));
        }
        assert_eq!(log.tail.len(), FAILED_STEP_LINES);
        assert_eq!(log.tail.front().map(String::as_str), Some("line 5"));
        assert!(!log.tail.iter().any(|l| l == "old"));
    }

    #[test]
    fn dockerfile_inside_the_context_or_an_error() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        std::fs::create_dir_all(ctx.join("sub")).unwrap();
        std::fs::write(ctx.join("sub/Dockerfile.prod"), "FROM scratch\n").unwrap();
        std::fs::write(d.path().join("Outside"), "FROM scratch\n").unwrap();
        let err = dockerfile_placement(&ctx, None).unwrap_err().to_string();
        assert!(err.contains("no Dockerfile in the build context"), "{err}");
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        assert_eq!(dockerfile_placement(&ctx, None).unwrap(), "Dockerfile");
        assert_eq!(
            dockerfile_placement(&ctx, Some(&ctx.join("sub/Dockerfile.prod"))).unwrap(),
            "sub/Dockerfile.prod"
        );
        let err = dockerfile_placement(&ctx, Some(&d.path().join("Outside")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Outside") && err.contains("outside the build context"),
            "{err}"
        );
        assert!(dockerfile_placement(&ctx, Some(&d.path().join("missing"))).is_err());
    }

    #[test]
    fn secrets_parse_as_docker_reads_them() {
        let s: SecretSpec = "id=npm,src=/run/npmrc".parse().unwrap();
        assert_eq!(s.id, "npm");
        assert_eq!(s.source, SecretSource::File("/run/npmrc".into()));
        let s: SecretSpec = "id=tok,env=GH_TOKEN".parse().unwrap();
        assert_eq!(s.source, SecretSource::Env("GH_TOKEN".into()));
        let s: SecretSpec = "type=env,id=tok,source=GH_TOKEN".parse().unwrap();
        assert_eq!(s.source, SecretSource::Env("GH_TOKEN".into()));
        let s: SecretSpec = "src=/etc/keys/deploy.pem".parse().unwrap();
        assert_eq!(
            s.id, "deploy.pem",
            "the file's name is the ID when none is given"
        );
        for bad in [
            "",
            "id=",
            "id=a,src=f,env=V",
            "id=a,colour=red",
            "id=a,type=ssh",
            "justtext",
            "id=a,src=",
        ] {
            let err = bad.parse::<SecretSpec>().unwrap_err().to_string();
            assert!(err.contains("is not a secret"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_missing_secret_says_which_and_why() {
        let s = SecretSpec {
            id: "k".into(),
            source: SecretSource::File("/nonexistent/key".into()),
        };
        let err = s.read().unwrap_err().to_string();
        assert!(
            err.contains("`k`") && err.contains("/nonexistent/key"),
            "{err}"
        );
        let s = SecretSpec {
            id: "t".into(),
            source: SecretSource::Env("TOOLBOX_TEST_UNSET_VARIABLE".into()),
        };
        let err = s.read().unwrap_err().to_string();
        assert!(err.contains("TOOLBOX_TEST_UNSET_VARIABLE"), "{err}");
    }

    #[test]
    fn docker_buildkit_reads_as_go_booleans() {
        assert_eq!(Builder::from_docker_buildkit("1"), Some(Builder::BuildKit));
        assert_eq!(
            Builder::from_docker_buildkit("true"),
            Some(Builder::BuildKit)
        );
        assert_eq!(Builder::from_docker_buildkit("0"), Some(Builder::Legacy));
        assert_eq!(
            Builder::from_docker_buildkit("False"),
            Some(Builder::Legacy)
        );
        assert_eq!(Builder::from_docker_buildkit("yes"), None);
        assert_eq!(Builder::from_docker_buildkit(""), None);
    }

    #[test]
    fn traces_decode_and_failures_name_the_step_and_its_last_lines() {
        use bollard_buildkit_proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog};
        let status = StatusResponse {
            vertexes: vec![Vertex {
                digest: "sha256:aa".into(),
                name: "[2/3] RUN make".into(),
                error: "process \"/bin/sh -c make\" did not complete successfully: exit code: 2"
                    .into(),
                ..Vertex::default()
            }],
            logs: (0..12)
                .map(|i| VertexLog {
                    vertex: "sha256:aa".into(),
                    msg: format!("out {i}\n").into_bytes(),
                    ..VertexLog::default()
                })
                .collect(),
            ..StatusResponse::default()
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(status.encode_to_vec());
        let trace = decode_trace(&b64).unwrap();
        assert_eq!(trace.steps[0].name, "[2/3] RUN make");
        assert_eq!(trace.logs.len(), 12);
        let mut steps = Steps::default();
        steps.record(&trace);
        let failure = steps.failure("failed to solve: …".into());
        assert_eq!(failure.step.as_deref(), Some("[2/3] RUN make"));
        assert!(
            failure.message.starts_with("process"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("out 11") && !failure.message.contains("out 1\n"));
        assert!(decode_trace("not base64!").is_none());
    }

    #[test]
    fn lines_are_put_back_together() {
        let mut lines = Lines::default();
        assert!(lines.push(b"{\"a\":").is_empty());
        assert_eq!(
            lines.push(b"1}\r\n{\"b\":2}\n"),
            vec!["{\"a\":1}", "{\"b\":2}"]
        );
    }
}
