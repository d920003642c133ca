//! Registries (the Docker Registry HTTP API v2, the OCI distribution API) without an engine:
//! push an archive, pull one, copy, list tags and repositories, delete and check.
//!
//! The HTTP side is `oci-client` (authentication challenges, uploads, verified blob streams);
//! what it lacks (deleting a manifest) is a plain request with the same credentials. Layers are
//! gzip-compressed on the way up, on all cores; every byte that comes down is checked against
//! its digest as it streams, and archives are written atomically.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
pub use oci_client::Reference;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::archive::Archive;
use crate::codec::{self, Body, Compression};
use crate::commit::AtomicFile;
use crate::digest::sha256;
use crate::error::{Error, IoContext, Result};
use crate::image::TarIndex;
use crate::name::{ArchiveName, Format};
use crate::oci::{
    DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Document,
    OCI_INDEX, OCI_MANIFEST, Platform,
};
use crate::pipe;
use crate::progress::{Reporter, Silent};

const ACCEPTED: [&str; 4] = [DOCKER_MANIFEST, OCI_MANIFEST, DOCKER_LIST, OCI_INDEX];
/// The gzip level layers are pushed at (gzip's default, as `docker push` uses).
const PUSH_LEVEL: u32 = 6;
/// The size of each upload request of a layer (oci-client's largest chunk).
const UPLOAD_CHUNK: usize = 4 << 20;
/// Configs and manifests larger than this are refused.
const MAX_DOCUMENT: usize = 4 << 20;

/// How to reach registries: plain HTTP, an extra CA, credentials.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Plain HTTP for every registry (always used for loopback addresses, unless a CA is given).
    pub insecure: bool,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// A user name and password, instead of those of the Docker config file.
    pub credentials: Option<(String, String)>,
}

/// One registry host, with its credentials.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    credentials: Option<(String, String)>,
    host: String,
    http: bool,
    ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        write!(f, "Registry({})", self.host)
    }
}

/// Parses `HOST[:PORT]/REPO[:TAG|@DIGEST]`.
pub fn parse_reference(text: &str) -> Result<Reference> {
    Reference::from_str(text).map_err(|e| Error::BadReference {
        reference: text.to_string(),
        reason: e.to_string(),
    })
}

/// Whether a reference text names a tag or digest (the part after the last `/` holds `:` or
/// `@`).
pub fn names_tag(text: &str) -> bool {
    let last = text.rsplit('/').next().unwrap_or(text);
    text.contains('/') && (last.contains(':') || last.contains('@'))
}

/// Whether a registry host is a loopback address, where plain HTTP is allowed unasked.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Registry {
    /// A client for the registry of `reference`.
    pub fn for_reference(reference: &Reference, access: &Access) -> Result<Registry> {
        let host = reference.resolve_registry().to_string();
        // Loopback registries speak plain HTTP unless a CA says they have a certificate.
        let http = access.insecure || (is_loopback(&host) && access.ca_cert.is_none());
        let mut config = ClientConfig {
            protocol: if http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            ..Default::default()
        };
        if let Some(path) = &access.ca_cert {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: fs::read(path).at(path)?,
            });
        }
        let credentials = access
            .credentials
            .clone()
            .or_else(|| docker_config_credentials(reference.registry()));
        let auth = match &credentials {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client: Client::new(config),
            auth,
            credentials,
            host,
            http,
            ca_cert: access.ca_cert.clone(),
        })
    }

    async fn ready(&self, reference: &Reference) {
        self.client
            .store_auth_if_needed(reference.resolve_registry(), &self.auth)
            .await;
    }

    /// The raw manifest at `reference` and its digest (checked when the reference has one).
    async fn manifest(&self, reference: &Reference) -> Result<(Bytes, String)> {
        self.ready(reference).await;
        let (bytes, _) = self
            .client
            .pull_manifest_raw(reference, &self.auth, &ACCEPTED)
            .await
            .map_err(|e| self.error(format!("fetching the manifest of {reference}"), e))?;
        let digest = sha256(&bytes);
        if let Some(wanted) = reference.digest()
            && wanted != digest
        {
            return Err(Error::DigestMismatch {
                what: format!("the manifest of {reference}"),
                expected: wanted.to_string(),
                found: digest,
            });
        }
        Ok((bytes, digest))
    }

    async fn blob_exists(&self, reference: &Reference, digest: &str) -> Result<bool> {
        self.ready(reference).await;
        self.client
            .blob_exists(reference, digest)
            .await
            .map_err(|e| self.error(format!("looking for blob {digest} in {reference}"), e))
    }

    /// A small blob (a config), checked against its digest.
    async fn small_blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>> {
        self.ready(reference).await;
        let mut stream = self
            .client
            .pull_blob_stream(reference, digest)
            .await
            .map_err(|e| self.error(format!("fetching blob {digest} of {reference}"), e))?
            .stream;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| blob_error(reference, digest, e))?;
            out.extend_from_slice(&chunk);
            if out.len() > MAX_DOCUMENT {
                return Err(self.error(
                    format!("fetching blob {digest} of {reference}"),
                    OciDistributionError::GenericError(Some("larger than a config can be".into())),
                ));
            }
        }
        check_digest(&format!("blob {digest} of {reference}"), digest, &out)?;
        Ok(out)
    }

    /// Turns a client error into one a user can act on; credentials never appear in it.
    fn error(&self, action: String, e: OciDistributionError) -> Error {
        let host = &self.host;
        let login =
            format!("pass --username and --password-stdin, or log in with `docker login {host}`");
        let unauthorized = |detail: &str| {
            if self.credentials.is_some() {
                format!("{host} refused the credentials ({detail}); check them, or {login}")
            } else {
                format!("{host} asks for credentials ({detail}): {login}")
            }
        };
        let not_found =
            |detail: &str| format!("not found ({detail}): check the repository and tag");
        let status = match &e {
            OciDistributionError::RequestError(re) => re.status().map(|c| c.as_u16()),
            OciDistributionError::ServerError { code, .. } => Some(*code),
            _ => None,
        };
        let reason = match (&e, status) {
            (OciDistributionError::RequestError(re), _) if re.is_connect() || re.is_timeout() => {
                let hint = if self.http {
                    "check the address and that the registry runs"
                } else {
                    "check the address; for a registry that serves plain HTTP, pass --insecure"
                };
                format!(
                    "cannot reach the registry {host}: {}; {hint}",
                    source_chain(re)
                )
            }
            (OciDistributionError::UnauthorizedError { .. }, _)
            | (OciDistributionError::AuthenticationFailure(_), _)
            | (_, Some(401)) => unauthorized("unauthorized"),
            (_, Some(403)) => format!("{host} denied access (HTTP 403 forbidden)"),
            (OciDistributionError::ImageManifestNotFoundError(_), _) | (_, Some(404)) => {
                not_found("HTTP 404")
            }
            (OciDistributionError::ServerError { code, message, .. }, _) => {
                format!("HTTP {code}: {message}")
            }
            (OciDistributionError::RequestError(re), _) => {
                format!("the request to {host} failed: {}", source_chain(re))
            }
            (OciDistributionError::RegistryError { envelope, .. }, _) => {
                let text = envelope
                    .errors
                    .iter()
                    .map(|e| {
                        let code = serde_json::to_value(&e.code)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default();
                        format!("{code}: {}", e.message)
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                if text.contains("UNAUTHORIZED") {
                    unauthorized(&text)
                } else if text.contains("NAME_UNKNOWN") || text.contains("MANIFEST_UNKNOWN") {
                    not_found(&text)
                } else {
                    text
                }
            }
            (other, _) => other.to_string(),
        };
        Error::Registry { action, reason }
    }
}

/// The whole chain of an error's causes, in one line.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

fn blob_error(reference: &Reference, digest: &str, e: io::Error) -> Error {
    Error::Registry {
        action: format!("fetching blob {digest} of {reference}"),
        reason: source_chain(&e),
    }
}

fn check_digest(what: &str, digest: &str, bytes: &[u8]) -> Result<()> {
    let found = sha256(bytes);
    if found != digest {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: digest.to_string(),
            found,
        });
    }
    Ok(())
}

/// The user name and password for `registry` in the Docker config file
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`), from its `auths`.
pub fn docker_config_credentials(registry: &str) -> Option<(String, String)> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")))?;
    let config: Value = serde_json::from_slice(&fs::read(dir.join("config.json")).ok()?).ok()?;
    let wanted = |key: &str| {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default();
        host == registry
            || (matches!(registry, "docker.io" | "index.docker.io")
                && matches!(
                    host,
                    "docker.io" | "index.docker.io" | "registry-1.docker.io"
                ))
    };
    let (_, entry) = config
        .get("auths")?
        .as_object()?
        .iter()
        .find(|(key, _)| wanted(key))?;
    if let Some(encoded) = entry.get("auth").and_then(Value::as_str) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some((user.to_string(), password.to_string()));
    }
    let user = entry.get("username")?.as_str()?;
    let password = entry.get("password")?.as_str()?;
    Some((user.to_string(), password.to_string()))
}

// ---------------------------------------------------------------------------------------------
// push

/// What `push` did.
#[derive(Debug, Clone, Serialize)]
pub struct Pushed {
    /// The manifest's digest.
    pub digest: String,
    /// The reference pushed to.
    pub reference: String,
    /// Layers uploaded, and layers the registry already had.
    pub uploaded: usize,
    pub skipped: usize,
}

/// Where a layer of the archive is pushed from, once its digest is known.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Pushable {
    digest: String,
    size: u64,
    media_type: String,
}

/// Pushes the image of `archive` to `target`: its config, its layers (gzip-compressed on the
/// way, on all cores, unless already compressed), skipping what the registry has, then a
/// Docker v2 schema 2 manifest. The archive streams; nothing is unpacked to disk.
pub async fn push(
    registry: &Registry,
    archive: &Archive,
    target: &Reference,
    reporter: Arc<dyn Reporter>,
) -> Result<Pushed> {
    let (info, index) = crate::image::read(archive)?;
    registry.ready(target).await;
    let config_digest = info.id.clone();
    if !registry.blob_exists(target, &config_digest).await? {
        registry
            .client
            .push_blob(target, info.config_bytes.clone(), &config_digest)
            .await
            .map_err(|e| registry.error(format!("uploading the config to {target}"), e))?;
    }
    let mut known = LayerMap::load();
    // A manifest of this very image already at the target names its layers' blobs too.
    if let Ok((bytes, _)) = registry.manifest(target).await
        && let Ok(doc) = Document::parse(&bytes)
        && doc
            .config
            .as_ref()
            .is_some_and(|c| c.digest == config_digest)
        && doc.layers.len() == info.layers.len()
    {
        for (layer, blob) in info.layers.iter().zip(&doc.layers) {
            if known.get(&layer.diff_id).is_none() {
                let found = Pushable {
                    digest: blob.digest.clone(),
                    size: blob.size,
                    media_type: blob.media_type.clone(),
                };
                known.insert(&layer.diff_id, &found);
            }
        }
    }
    let mut ready: HashMap<String, Pushable> = HashMap::new();
    let mut to_upload: Vec<usize> = Vec::new();
    for (n, layer) in info.layers.iter().enumerate() {
        let candidate = match stored_blob(&layer.path) {
            // An OCI blob: pushed as stored, its name is its digest.
            Some(digest) if layer.diff_id != digest => Some(Pushable {
                digest,
                size: layer.size,
                media_type: DOCKER_LAYER_GZIP.into(),
            }),
            _ => known.get(&layer.diff_id),
        };
        match candidate {
            Some(p) if registry.blob_exists(target, &p.digest).await? => {
                ready.insert(layer.diff_id.clone(), p);
            }
            _ => to_upload.push(n),
        }
    }
    let skipped = info.layers.len() - to_upload.len();
    let total: u64 = to_upload.iter().map(|&n| info.layers[n].size).sum();
    reporter.start(Some(total));

    // A blocking reader hands each layer to upload as a stream of gzip bytes; the uploads run
    // here, one at a time, in the order the archive gives them.
    let (streams_tx, mut streams_rx) = tokio::sync::mpsc::channel(1);
    let wanted: Vec<(String, String, bool)> = to_upload
        .iter()
        .map(|&n| {
            let l = &info.layers[n];
            // A compressed OCI blob goes up as stored; an uncompressed one is compressed.
            let as_is = stored_blob(&l.path).is_some_and(|d| d != l.diff_id);
            (l.path.clone(), l.diff_id.clone(), as_is)
        })
        .collect();
    let archive_copy = archive.clone();
    let progress = Arc::clone(&reporter);
    let reader = tokio::task::spawn_blocking(move || {
        stream_layers(
            &archive_copy,
            &index,
            &wanted,
            &streams_tx,
            progress.as_ref(),
        )
    });
    let mut uploaded = 0;
    let mut failure = None;
    while let Some((diff_id, stream)) = streams_rx.recv().await {
        match registry
            .client
            .push_blob_stream_chunked(target, stream)
            .await
        {
            Ok(done) => {
                uploaded += 1;
                ready.insert(
                    diff_id,
                    Pushable {
                        digest: done.blob_digest,
                        size: done.size,
                        media_type: DOCKER_LAYER_GZIP.into(),
                    },
                );
            }
            Err(e) => {
                failure = Some(registry.error(format!("uploading a layer to {target}"), e));
                break;
            }
        }
    }
    drop(streams_rx);
    let read = reader.await.map_err(|e| Error::Registry {
        action: "reading the archive".into(),
        reason: e.to_string(),
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    // The uncompressed digests the reader saw must be the config's.
    for (path, diff_id, found) in read? {
        if diff_id != found {
            return Err(Error::Corrupt {
                path: archive.path.clone(),
                reason: format!("the layer `{path}` has digest {found}, the config says {diff_id}"),
            });
        }
    }
    reporter.finish();
    for (diff_id, p) in &ready {
        known.insert(diff_id, p);
    }
    known.save();

    let layers: Vec<Value> = info
        .layers
        .iter()
        .map(|l| {
            let p = ready.get(&l.diff_id).ok_or_else(|| Error::Registry {
                action: format!("pushing to {target}"),
                reason: format!("the layer {} was not uploaded", l.diff_id),
            })?;
            Ok(serde_json::json!({"mediaType": p.media_type, "size": p.size, "digest": p.digest}))
        })
        .collect::<Result<_>>()?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {
            "mediaType": DOCKER_CONFIG,
            "size": info.config_bytes.len(),
            "digest": config_digest,
        },
        "layers": layers,
    });
    let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    let digest = sha256(&bytes);
    registry
        .client
        .push_manifest_raw(
            target,
            bytes,
            reqwest::header::HeaderValue::from_static(DOCKER_MANIFEST),
        )
        .await
        .map_err(|e| registry.error(format!("pushing the manifest to {target}"), e))?;
    Ok(Pushed {
        digest,
        reference: target.whole(),
        uploaded,
        skipped,
    })
}

/// The digest an OCI blob path names (`blobs/sha256/<hex>`).
fn stored_blob(path: &str) -> Option<String> {
    let hex = path.strip_prefix("blobs/sha256/")?;
    (hex.len() == 64).then(|| format!("sha256:{hex}"))
}

type LayerStream = futures_util::stream::BoxStream<'static, oci_client::errors::Result<Bytes>>;

/// Reads the layers `wanted` (path, diff ID, stored as is) out of the archive — seeking in a
/// `.docker`, in one streaming pass otherwise — and sends each as a stream of the bytes to
/// upload (gzip-compressed unless stored compressed). Returns each layer's path, expected and
/// found uncompressed digest.
fn stream_layers(
    archive: &Archive,
    index: &TarIndex,
    wanted: &[(String, String, bool)],
    streams: &tokio::sync::mpsc::Sender<(String, LayerStream)>,
    reporter: &dyn Reporter,
) -> Result<Vec<(String, String, String)>> {
    let mut found = Vec::new();
    let mut send = |path: &str, diff_id: &str, as_is: bool, data: &mut dyn Read| -> Result<()> {
        let (mut writer, stream) = pipe::from_writer();
        let stream: LayerStream = batched(stream, UPLOAD_CHUNK)
            .map(|r| r.map_err(OciDistributionError::IoError))
            .boxed();
        if streams
            .blocking_send((diff_id.to_string(), stream))
            .is_err()
        {
            return Err(Error::Registry {
                action: "uploading".into(),
                reason: "the upload stopped".into(),
            });
        }
        let mut hashing = HashingReader::new(data, reporter);
        let result = if as_is {
            io::copy(&mut hashing, &mut writer).map(|_| ())
        } else {
            codec::deflate::gzip(
                &mut hashing,
                &mut writer,
                PUSH_LEVEL,
                codec::deflate::default_threads(),
            )
            .map(|_| ())
            .map_err(|e| match e {
                codec::deflate::PipelineError::Read(e)
                | codec::deflate::PipelineError::Write(e) => e,
            })
        };
        match result {
            Ok(()) => writer.finish().at(&archive.path)?,
            Err(e) => {
                let text = e.to_string();
                writer.fail(e);
                return Err(Error::Registry {
                    action: format!("reading the layer `{path}`"),
                    reason: text,
                });
            }
        }
        let digest = if as_is {
            // A stored blob is checked against its name; its diff ID is checked by verify.
            diff_id.to_string()
        } else {
            hashing.digest()
        };
        found.push((path.to_string(), diff_id.to_string(), digest));
        Ok(())
    };
    match archive.name.format {
        Format::Docker => {
            let mut file = fs::File::open(&archive.path).at(&archive.path)?;
            for (path, diff_id, as_is) in wanted {
                let (offset, size) =
                    index
                        .file(path)
                        .map(|f| (f.offset, f.size))
                        .ok_or_else(|| Error::Corrupt {
                            path: archive.path.clone(),
                            reason: format!("the layer `{path}` is missing"),
                        })?;
                file.seek(SeekFrom::Start(offset)).at(&archive.path)?;
                let mut data = io::BufReader::with_capacity(1 << 20, (&file).take(size));
                send(path, diff_id, *as_is, &mut data)?;
            }
        }
        _ => {
            // Layers come in the tar's order; a layer linked from several paths is sent once.
            let by_path: HashMap<String, (&String, bool)> = wanted
                .iter()
                .filter_map(|(path, diff_id, as_is)| {
                    let real = index.file(path)?.path.to_string();
                    Some((real, (diff_id, *as_is)))
                })
                .collect();
            codec::with_tar_reader(archive, &Silent, |tar| {
                let mut entries = tar::Archive::new(tar);
                let damaged = |e: io::Error| Error::Corrupt {
                    path: archive.path.clone(),
                    reason: format!("the tar is damaged: {e}"),
                };
                for entry in entries.entries().map_err(damaged)? {
                    let mut entry = entry.map_err(damaged)?;
                    let key = crate::image::index::normalize(&entry.path().map_err(damaged)?)
                        .unwrap_or_default();
                    if let Some((diff_id, as_is)) = by_path.get(&key) {
                        send(&key, diff_id, *as_is, &mut entry)?;
                    }
                }
                Ok::<_, Error>(())
            })?;
        }
    }
    Ok(found)
}

/// Gathers a stream's pieces into chunks of at least `size` bytes (the last may be smaller):
/// each chunk is one upload request.
fn batched(
    stream: impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static,
    size: usize,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold((Box::pin(stream), false), move |(mut s, done)| async move {
        if done {
            return None;
        }
        let mut buf = bytes::BytesMut::new();
        loop {
            match s.next().await {
                Some(Ok(piece)) => {
                    buf.extend_from_slice(&piece);
                    if buf.len() >= size {
                        return Some((Ok(buf.freeze()), (s, false)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (s, true))),
                None if buf.is_empty() => return None,
                None => return Some((Ok(buf.freeze()), (s, true))),
            }
        }
    })
}

/// Counts and hashes what goes through.
struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    hasher: Sha256,
    reporter: &'a dyn Reporter,
}

impl<'a> HashingReader<'a> {
    fn new(inner: &'a mut dyn Read, reporter: &'a dyn Reporter) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            reporter,
        }
    }

    fn digest(&self) -> String {
        crate::digest::hex(self.hasher.clone())
    }
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.reporter.advance(n as u64);
        Ok(n)
    }
}

/// Which compressed blob each uncompressed layer was pushed as (gzip at a fixed level on fixed
/// chunks is deterministic), kept in the user's cache folder so that a second push of the same
/// layers uploads nothing.
struct LayerMap {
    path: Option<PathBuf>,
    entries: HashMap<String, Pushable>,
    changed: bool,
}

impl LayerMap {
    fn load() -> LayerMap {
        let path = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .map(|d| d.join("toolbox").join("pushed-layers.json"));
        let entries = path
            .as_ref()
            .and_then(|p| fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        LayerMap {
            path,
            entries,
            changed: false,
        }
    }

    fn get(&self, diff_id: &str) -> Option<Pushable> {
        self.entries.get(diff_id).cloned()
    }

    fn insert(&mut self, diff_id: &str, p: &Pushable) {
        if self.entries.get(diff_id) != Some(p) {
            self.entries.insert(diff_id.to_string(), p.clone());
            self.changed = true;
        }
    }

    /// Saves the map; a cache that cannot be written only costs a later upload.
    fn save(self) {
        let Some(path) = self.path.filter(|_| self.changed) else {
            return;
        };
        let write = || -> Result<()> {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).at(dir)?;
            }
            let mut file = AtomicFile::create(&path)?;
            let bytes = serde_json::to_vec(&self.entries).unwrap_or_default();
            io::Write::write_all(file.file_mut(), &bytes).at(&path)?;
            file.commit().map(|_| ()).map_err(Error::from)
        };
        let _ = write();
    }
}

// ---------------------------------------------------------------------------------------------
// pull

/// What `pull` was asked for.
#[derive(Debug, Clone)]
pub struct PullRequest {
    pub reference: Reference,
    /// The image name [default: the repository's last component].
    pub image: Option<String>,
    /// The version [default: the tag].
    pub version: Option<String>,
    pub platform: Platform,
    pub compress: Option<Compression>,
}

/// What `pull` did.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub path: PathBuf,
    pub name: ArchiveName,
    /// The manifest's digest.
    pub digest: String,
    /// False when an archive of the same image ID was already there.
    pub written: bool,
}

/// Resolves a manifest list or index to the manifest for `platform`.
async fn resolve_manifest(
    registry: &Registry,
    reference: &Reference,
    platform: &Platform,
) -> Result<(Document, Bytes, String)> {
    let (mut bytes, mut digest) = registry.manifest(reference).await?;
    let mut doc = parse_document(&bytes, &format!("the manifest of {reference}"))?;
    for _ in 0..4 {
        if !matches!(doc.media_type(), DOCKER_LIST | OCI_INDEX) {
            return Ok((doc, bytes, digest));
        }
        let entries = doc.manifests.clone().unwrap_or_default();
        let chosen = entries
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| platform.matches(p)))
            .ok_or_else(|| {
                let offered: Vec<String> = entries
                    .iter()
                    .filter_map(|m| m.platform.as_ref().map(ToString::to_string))
                    .collect();
                Error::Registry {
                    action: format!("choosing a platform of {reference}"),
                    reason: format!(
                        "no image for {platform}; it has {} (choose with --platform)",
                        offered.join(", ")
                    ),
                }
            })?;
        let child = reference.clone_with_digest(chosen.digest.clone());
        (bytes, digest) = registry.manifest(&child).await?;
        doc = parse_document(&bytes, &format!("the manifest of {child}"))?;
    }
    Err(Error::Registry {
        action: format!("reading the manifest of {reference}"),
        reason: "manifest lists nest too deeply".into(),
    })
}

/// Pulls `req.reference` into the artifacts directory `dir` as a `docker load`-able archive:
/// the blobs as the registry stores them (`blobs/sha256/…`, each checked against its digest
/// as it streams) with a `manifest.json`, an OCI `index.json` and `oci-layout` — the layout
/// of Docker 25 — written atomically under its archive name.
pub async fn pull(
    registry: &Registry,
    dir: &Path,
    req: &PullRequest,
    reporter: Arc<dyn Reporter>,
) -> Result<Pulled> {
    let reference = &req.reference;
    let (doc, manifest_bytes, digest) =
        resolve_manifest(registry, reference, &req.platform).await?;
    let config = doc.config.clone().ok_or_else(|| Error::Registry {
        action: format!("reading the manifest of {reference}"),
        reason: "it names no config".into(),
    })?;
    let config_bytes = registry.small_blob(reference, &config.digest).await?;
    let image = match &req.image {
        Some(i) => i.clone(),
        None => reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let version = match (&req.version, reference.tag()) {
        (Some(v), _) => v.clone(),
        (None, Some(tag)) => tag.to_string(),
        (None, None) => {
            return Err(Error::Registry {
                action: format!("naming the archive of {reference}"),
                reason: "the reference has no tag: pass --version".into(),
            });
        }
    };
    let hex = config
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&config.digest);
    let id = crate::ops::update::short_id(hex)?;
    let format = req
        .compress
        .as_ref()
        .map_or(Format::Docker, |c| c.format.clone());
    let name = ArchiveName::new(&image, &version, &id, format.clone())?;
    // The same image already there (any known format): nothing to do.
    let store = crate::ops::open_store(dir)?;
    if let Some(existing) = store
        .known_of(&image)
        .find(|a| a.name.version == version && a.name.id == id)
    {
        return Ok(Pulled {
            path: existing.path.clone(),
            name: existing.name.clone(),
            digest,
            written: false,
        });
    }
    let dest = dir.join(name.file_name());
    let total: u64 = doc.layers.iter().map(|l| l.size).sum();
    reporter.start(Some(total));

    let (tx, mut reader) = pipe::to_reader();
    let writer_dest = dest.clone();
    let source = PathBuf::from(reference.whole());
    let level = req.compress.as_ref().map_or(0, |c| c.level);
    let writer = tokio::task::spawn_blocking(move || {
        let body = Body {
            source: &source,
            modified: SystemTime::now(),
            comment: None,
        };
        codec::write_archive(&mut reader, body, &writer_dest, level)
    });
    let tag = format!("{image}:{}", crate::version::docker_tag(&version)?);
    let result = send_layout(
        registry,
        reference,
        &tx,
        &doc,
        &config_bytes,
        &manifest_bytes,
        &digest,
        &tag,
        reporter.as_ref(),
    )
    .await;
    match &result {
        Ok(()) => tx.finish().await,
        Err(e) => tx.fail(io::Error::other(e.to_string())).await,
    }
    let written = writer.await.map_err(|e| Error::Registry {
        action: "writing the archive".into(),
        reason: e.to_string(),
    })?;
    result?;
    let path = written?;
    reporter.finish();
    Ok(Pulled {
        path,
        name,
        digest,
        written: true,
    })
}

/// Sends the tar of the pulled image into the pipe.
#[allow(clippy::too_many_arguments)]
async fn send_layout(
    registry: &Registry,
    reference: &Reference,
    tx: &pipe::Sender,
    doc: &Document,
    config_bytes: &[u8],
    manifest_bytes: &[u8],
    manifest_digest: &str,
    tag: &str,
    reporter: &dyn Reporter,
) -> Result<()> {
    let stopped = || Error::Registry {
        action: "writing the archive".into(),
        reason: "the writer stopped".into(),
    };
    let config = doc
        .config
        .as_ref()
        .map(|c| c.digest.clone())
        .unwrap_or_default();
    let blob_name = crate::image::blob_path;
    // Small documents first: the config and the manifest.
    for (digest, bytes) in [
        (config.as_str(), config_bytes),
        (manifest_digest, manifest_bytes),
    ] {
        if !tx.send(tar_member(&blob_name(digest), bytes)).await {
            return Err(stopped());
        }
    }
    let mut seen = std::collections::HashSet::new();
    for layer in &doc.layers {
        if !seen.insert(layer.digest.clone()) {
            continue; // one blob serves every layer that names it
        }
        registry.ready(reference).await;
        let mut stream = registry
            .client
            .pull_blob_stream(reference, layer.digest.as_str())
            .await
            .map_err(|e| {
                registry.error(format!("fetching blob {} of {reference}", layer.digest), e)
            })?
            .stream;
        if !tx
            .send(tar_header(&blob_name(&layer.digest), layer.size))
            .await
        {
            return Err(stopped());
        }
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| blob_error(reference, &layer.digest, e))?;
            got += chunk.len() as u64;
            if got > layer.size {
                break;
            }
            hasher.update(&chunk);
            reporter.advance(chunk.len() as u64);
            if !tx.send(chunk).await {
                return Err(stopped());
            }
        }
        let found = crate::digest::hex(hasher);
        if got != layer.size || found != layer.digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {} of {reference} ({got} bytes)", layer.digest),
                expected: format!("{} ({} bytes)", layer.digest, layer.size),
                found,
            });
        }
        if !tx.send(Bytes::from(vec![0u8; padding(layer.size)])).await {
            return Err(stopped());
        }
    }
    let layers: Vec<String> = doc.layers.iter().map(|l| blob_name(&l.digest)).collect();
    let manifest_json = serde_json::to_vec(&serde_json::json!([{
        "Config": blob_name(&config),
        "RepoTags": [tag],
        "Layers": layers,
    }]))
    .unwrap_or_default();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": doc.media_type(),
            "digest": manifest_digest,
            "size": manifest_bytes.len(),
            "annotations": {
                "io.containerd.image.name": tag,
                "org.opencontainers.image.ref.name": tag.rsplit(':').next().unwrap_or_default(),
            },
        }],
    }))
    .unwrap_or_default();
    for (name, bytes) in [
        ("manifest.json", manifest_json.as_slice()),
        ("index.json", index.as_slice()),
        (
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#.as_slice(),
        ),
    ] {
        if !tx.send(tar_member(name, bytes)).await {
            return Err(stopped());
        }
    }
    // The end of the tar: two zero blocks.
    if !tx.send(Bytes::from(vec![0u8; 1024])).await {
        return Err(stopped());
    }
    Ok(())
}

fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

fn tar_header(name: &str, size: u64) -> Bytes {
    let mut header = tar::Header::new_ustar();
    let _ = header.set_path(name);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Bytes::copy_from_slice(header.as_bytes())
}

fn tar_member(name: &str, data: &[u8]) -> Bytes {
    let mut out = tar_header(name, data.len() as u64).to_vec();
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len() as u64), 0);
    Bytes::from(out)
}

// ---------------------------------------------------------------------------------------------
// tags, catalog, delete, copy, check

/// The tags of a repository.
pub async fn tags(registry: &Registry, repository: &Reference) -> Result<Vec<String>> {
    registry.ready(repository).await;
    let response = registry
        .client
        .list_tags(repository, &registry.auth, None, None)
        .await
        .map_err(|e| {
            registry.error(
                format!("listing the tags of {}", repository.repository()),
                e,
            )
        })?;
    let mut tags = response.tags;
    tags.sort();
    Ok(tags)
}

/// The repositories of a registry.
pub async fn catalog(registry: &Registry, host: &Reference) -> Result<Vec<String>> {
    registry.ready(host).await;
    let response = registry
        .client
        .catalog(host, &registry.auth, None, None)
        .await
        .map_err(|e| registry.error(format!("listing the repositories of {}", registry.host), e))?;
    let mut repositories = response.repositories;
    repositories.sort();
    Ok(repositories)
}

/// Deletes the manifest `reference` names (a tag is resolved to its digest first, so that the
/// manifest itself goes, as the registry API requires). Returns the digest deleted.
pub async fn delete(registry: &Registry, reference: &Reference) -> Result<String> {
    let (_, digest) = registry.manifest(reference).await?;
    let token = registry
        .client
        .auth(reference, &registry.auth, RegistryOperation::Push)
        .await
        .map_err(|e| registry.error(format!("deleting {reference}"), e))?;
    let scheme = if registry.http { "http" } else { "https" };
    let url = format!(
        "{scheme}://{}/v2/{}/manifests/{digest}",
        reference.resolve_registry(),
        reference.repository()
    );
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &registry.ca_cert {
        let pem = fs::read(path).at(path)?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| Error::Registry {
            action: format!("reading `{}`", path.display()),
            reason: e.to_string(),
        })?;
        builder = builder.add_root_certificate(cert);
    }
    let http = builder.build().map_err(|e| Error::Registry {
        action: format!("deleting {reference}"),
        reason: source_chain(&e),
    })?;
    let mut request = http.delete(&url);
    request = match (token, &registry.credentials) {
        (Some(token), _) => request.bearer_auth(token),
        (None, Some((user, password))) => request.basic_auth(user, Some(password)),
        (None, None) => request,
    };
    let response = request
        .send()
        .await
        .map_err(|e| registry.error(format!("deleting {reference}"), e.into()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(digest);
    }
    let body = response.text().await.unwrap_or_default();
    let reason = match status.as_u16() {
        401 => format!(
            "{} refused the request (HTTP 401 unauthorized): pass --username and --password-stdin",
            registry.host
        ),
        404 => "not found (HTTP 404)".to_string(),
        405 => "the registry does not allow deleting (HTTP 405 UNSUPPORTED; a Docker registry \
                needs storage.delete.enabled: true)"
            .to_string(),
        code => format!("HTTP {code}: {}", body.trim()),
    };
    Err(Error::Registry {
        action: format!("deleting {reference}"),
        reason,
    })
}

/// The manifests a reference stands for: itself, and for a list or index each manifest in it.
async fn manifests_of(
    registry: &Registry,
    reference: &Reference,
) -> Result<Vec<(Reference, Document, Bytes, String)>> {
    let (bytes, digest) = registry.manifest(reference).await?;
    let doc = parse_document(&bytes, &format!("the manifest of {reference}"))?;
    let mut out = Vec::new();
    if let Some(children) = doc.manifests.clone() {
        for child in children {
            let at = reference.clone_with_digest(child.digest.clone());
            let (child_bytes, child_digest) = registry.manifest(&at).await?;
            let child_doc = parse_document(&child_bytes, &format!("the manifest of {at}"))?;
            out.push((at, child_doc, child_bytes, child_digest));
        }
    }
    out.push((reference.clone(), doc, bytes, digest));
    Ok(out)
}

fn parse_document(bytes: &[u8], what: &str) -> Result<Document> {
    Document::parse(bytes).map_err(|e| Error::Registry {
        action: format!("reading {what}"),
        reason: format!("not a manifest: {e}"),
    })
}

fn blobs_of(doc: &Document) -> Vec<Descriptor> {
    doc.config
        .iter()
        .chain(doc.layers.iter())
        .cloned()
        .collect()
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    pub digest: String,
    pub blobs: usize,
    pub missing: Vec<String>,
}

/// Checks that the manifest of `reference` (and of every manifest a list names) is there and
/// that every blob it names is.
pub async fn check(registry: &Registry, reference: &Reference) -> Result<Checked> {
    let all = manifests_of(registry, reference).await?;
    let digest = all.last().map(|m| m.3.clone()).unwrap_or_default();
    let mut blobs = 0;
    let mut missing = Vec::new();
    for (at, doc, _, _) in &all {
        for blob in blobs_of(doc) {
            blobs += 1;
            if !registry.blob_exists(at, &blob.digest).await? {
                missing.push(blob.digest);
            }
        }
    }
    Ok(Checked {
        digest,
        blobs,
        missing,
    })
}

/// Copies what `src` names to `dst` (another tag, repository or registry): blobs the
/// destination lacks are mounted from the source repository when both are on one registry,
/// else streamed through (checked against their digests); the manifests are pushed byte for
/// byte, so the digest stays. Returns the digest.
pub async fn copy(
    src_registry: &Registry,
    src: &Reference,
    dst_registry: &Registry,
    dst: &Reference,
) -> Result<String> {
    let all = manifests_of(src_registry, src).await?;
    let same_registry = src.resolve_registry() == dst.resolve_registry();
    for (at, doc, bytes, digest) in &all {
        for blob in blobs_of(doc) {
            if dst_registry.blob_exists(dst, &blob.digest).await? {
                continue;
            }
            if same_registry {
                dst_registry.ready(dst).await;
                let mounted = dst_registry.client.mount_blob(dst, at, &blob.digest).await;
                if mounted.is_ok() && dst_registry.blob_exists(dst, &blob.digest).await? {
                    continue;
                }
            }
            src_registry.ready(at).await;
            let source = src_registry
                .client
                .pull_blob_stream(at, blob.digest.as_str())
                .await
                .map_err(|e| {
                    src_registry.error(format!("fetching blob {} of {at}", blob.digest), e)
                })?
                .stream;
            // The source's stream is checked against the digest as it ends (oci-client), and
            // the destination checks it again before it accepts the blob.
            let stream =
                batched(source, UPLOAD_CHUNK).map(|r| r.map_err(OciDistributionError::IoError));
            dst_registry.ready(dst).await;
            dst_registry
                .client
                .push_blob_stream(dst, stream, &blob.digest, Some(blob.size))
                .await
                .map_err(|e| {
                    dst_registry.error(format!("copying blob {} to {dst}", blob.digest), e)
                })?;
        }
        let target = if at == src {
            dst.clone()
        } else {
            dst.clone_with_digest(digest.clone())
        };
        let media_type = reqwest::header::HeaderValue::from_str(doc.media_type())
            .unwrap_or(reqwest::header::HeaderValue::from_static(OCI_MANIFEST));
        dst_registry.ready(&target).await;
        dst_registry
            .client
            .push_manifest_raw(&target, bytes.clone(), media_type)
            .await
            .map_err(|e| dst_registry.error(format!("pushing the manifest to {target}"), e))?;
    }
    Ok(all.last().map(|m| m.3.clone()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example.com",
            "10.0.0.1:5000",
            "docker.io",
            "[2001:db8::1]:5",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn tags_in_reference_texts() {
        assert!(names_tag("127.0.0.1:5000/web:1.0"));
        assert!(names_tag("127.0.0.1:5000/web@sha256:abc"));
        assert!(!names_tag("127.0.0.1:5000/web"));
        assert!(!names_tag("127.0.0.1:5000/team/web"));
    }

    #[test]
    fn platforms() {
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux/amd64/x/y").is_err());
        let any_variant = Platform::parse("linux/arm64").unwrap();
        assert!(any_variant.matches(&p));
        assert!(!p.matches(&any_variant));
    }

    #[test]
    fn credentials_from_the_docker_config() {
        let d = tempfile::tempdir().unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode("ann:s3cret");
        fs::write(
            d.path().join("config.json"),
            format!(r#"{{"auths":{{"https://127.0.0.1:5000":{{"auth":"{encoded}"}}}}}}"#),
        )
        .unwrap();
        // SAFETY: this test is the only one that reads or writes DOCKER_CONFIG.
        unsafe { std::env::set_var("DOCKER_CONFIG", d.path()) };
        assert_eq!(
            docker_config_credentials("127.0.0.1:5000"),
            Some(("ann".into(), "s3cret".into()))
        );
        assert_eq!(docker_config_credentials("127.0.0.1:5001"), None);
        unsafe { std::env::remove_var("DOCKER_CONFIG") };
    }

    #[test]
    fn batches_keep_every_byte_in_order() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pieces: Vec<io::Result<Bytes>> =
            (0..10u8).map(|i| Ok(Bytes::from(vec![i; 3]))).collect();
        let out: Vec<io::Result<Bytes>> =
            rt.block_on(batched(futures_util::stream::iter(pieces), 7).collect());
        let sizes: Vec<usize> = out.iter().map(|b| b.as_ref().unwrap().len()).collect();
        assert_eq!(sizes, vec![9, 9, 9, 3]);
        let all: Vec<u8> = out.into_iter().flat_map(|b| b.unwrap().to_vec()).collect();
        assert_eq!(all, (0..10u8).flat_map(|i| [i; 3]).collect::<Vec<_>>());
        let failing = vec![Ok(Bytes::from_static(b"ab")), Err(io::Error::other("cut"))];
        let out: Vec<io::Result<Bytes>> =
            rt.block_on(batched(futures_util::stream::iter(failing), 7).collect());
        assert_eq!(out.len(), 1);
        assert!(
            out[0].is_err(),
            "an error is passed on, never a short chunk"
        );
    }

    #[test]
    fn tar_members_are_padded() {
        let member = tar_member("blobs/sha256/x", b"hello");
        assert_eq!(member.len(), 1024);
        let mut all = member.to_vec();
        all.extend_from_slice(&[0u8; 1024]);
        let mut archive = tar::Archive::new(all.as_slice());
        let mut entry = archive.entries().unwrap().next().unwrap().unwrap();
        let mut data = String::new();
        entry.read_to_string(&mut data).unwrap();
        assert_eq!(data, "hello");
    }
}
