//! The registry's errors. Each names the reference, digest or host at issue and, where there is
//! one, what to do; credentials never appear in them.
//!
//! Failures of the HTTP side are sorted by what `oci-client` reports — its error variant, the
//! HTTP status, the codes of a registry's error envelope — never by the words of a message.

use std::io;
use std::path::PathBuf;

use oci_client::errors::{OciDistributionError, OciErrorCode};

use crate::codec::CodecError;
use crate::image::ArchiveError;
use crate::io_error::IoError;
use crate::name::NameError;
use crate::version::VersionError;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A reference that does not parse as `HOST[:PORT]/REPO[:TAG|@DIGEST]`.
    #[error("`{reference}` is not a valid reference: {source}")]
    BadReference {
        reference: String,
        #[source]
        source: oci_client::ParseError,
    },

    /// The `--ca-cert` file cannot be read.
    #[error("cannot read the CA certificates `{}`: {source}", path.display())]
    ReadCaCert {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The `--ca-cert` file holds no certificate the TLS client accepts.
    #[error(
        "`{}` is not a PEM file of CA certificates the TLS client accepts: {}",
        path.display(),
        chain(source)
    )]
    BadCaCert {
        path: PathBuf,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The HTTP client cannot be built (for one, no CA certificates on the system).
    #[error(
        "cannot set up the HTTP client for {host}: {}; pass --ca-cert with the registry's CA",
        chain(source)
    )]
    ClientSetup {
        host: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// No connection (refused, timed out, no such host, TLS handshake failed).
    #[error("{action}: cannot reach the registry {host}: {}; {}", chain(source), reach_hint(*http))]
    Unreachable {
        action: String,
        host: String,
        /// Whether plain HTTP was used.
        http: bool,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The registry wants credentials and none were given.
    #[error(
        "{action}: {host} asks for credentials ({detail}): {}",
        login_hint(host)
    )]
    CredentialsNeeded {
        action: String,
        host: String,
        detail: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The registry refused the credentials given.
    #[error(
        "{action}: {host} refused the credentials from {origin} ({detail}); check them, or {}",
        login_hint(host)
    )]
    CredentialsRefused {
        action: String,
        host: String,
        /// Where the credentials came from.
        origin: String,
        detail: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The registry is busy (HTTP 429) or failing (5xx), said on a request made outside the
    /// client (so its `Retry-After` is known).
    #[error("{action}: {host} answered HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Throttled {
        action: String,
        host: String,
        status: u16,
        message: String,
        retry_after: Option<std::time::Duration>,
    },

    /// The docker CLI's files or credential helper failed.
    #[error(transparent)]
    DockerCli(#[from] crate::docker_cli::DockerCliError),

    /// The credentials are known but do not allow this (HTTP 403, `DENIED`).
    #[error("{action}: {host} denied access ({detail})")]
    Denied {
        action: String,
        host: String,
        detail: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// No such repository, tag or manifest (HTTP 404, `NAME_UNKNOWN`, `MANIFEST_UNKNOWN`).
    #[error("{action}: not found ({detail}): check the repository and tag")]
    NotFound {
        action: String,
        detail: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// Another HTTP status, with the body the registry sent.
    #[error("{action}: HTTP {status}: {message}")]
    Status {
        action: String,
        status: u16,
        message: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The request failed on the way (connection reset, a body that could not be sent).
    #[error("{action}: the request to {host} failed: {}", chain(source))]
    RequestFailed {
        action: String,
        host: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The registry answered with an error envelope (`CODE: message; …`).
    #[error("{action}: {detail}")]
    Rejected {
        action: String,
        detail: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// Any other failure of the registry client.
    #[error("{action}: {source}")]
    Client {
        action: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    /// The registry does not allow deleting manifests.
    #[error(
        "deleting {reference}: the registry does not allow deleting (HTTP 405 UNSUPPORTED; a \
         Docker registry needs storage.delete.enabled: true)"
    )]
    DeleteUnsupported { reference: String },

    /// A blob's stream broke off, or did not match its digest as it ended.
    #[error("fetching blob {digest} of {reference}: {}", chain(source))]
    BlobStream {
        reference: String,
        digest: String,
        #[source]
        source: io::Error,
    },

    /// What came down does not match its digest.
    #[error(
        "{what} does not match its digest: expected {expected}, got {found}; nothing was written"
    )]
    DigestMismatch {
        what: String,
        expected: String,
        found: String,
    },

    /// A config larger than any config is.
    #[error("fetching blob {digest} of {reference}: larger than a config can be ({limit} bytes)")]
    TooLarge {
        reference: String,
        digest: String,
        limit: usize,
    },

    /// A manifest, manifest list or index that does not parse.
    #[error("reading {what}: not a manifest: {source}")]
    BadDocument {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A manifest names no config.
    #[error("reading the manifest of {reference}: it names no config")]
    NoConfig { reference: String },

    /// Manifest lists inside manifest lists, too deep.
    #[error("reading the manifest of {reference}: manifest lists nest too deeply")]
    TooDeep { reference: String },

    /// A manifest list without the platform asked for.
    #[error(
        "choosing a platform of {reference}: no image for {platform}; it has {offered} (choose \
         with --platform)"
    )]
    NoPlatform {
        reference: String,
        platform: String,
        /// The platforms the list has, comma-separated.
        offered: String,
    },

    /// A pulled image's archive needs a version, and the reference has no tag to give one.
    #[error("naming the archive of {reference}: the reference has no tag: pass --version")]
    NoVersion { reference: String },

    /// A layer of the archive cannot be read while it is uploaded.
    #[error("reading the layer `{path}`: {source}")]
    ReadLayer {
        path: String,
        #[source]
        source: io::Error,
    },

    /// The upload stopped taking layers (its own error says why).
    #[error("uploading: the upload stopped")]
    UploadStopped,

    /// The archive writer of a pull stopped taking bytes (its own error says why).
    #[error("writing the archive: the writer stopped")]
    WriterStopped,

    /// A blob could not be written where it goes (the layer store).
    #[error("writing a downloaded blob: {0}")]
    Store(String),

    /// A layer the manifest needs was neither found nor uploaded.
    #[error("pushing to {reference}: the layer {diff_id} was not uploaded")]
    NotUploaded { reference: String, diff_id: String },

    /// A worker thread (reading or writing the archive) failed.
    #[error("{action}: {source}")]
    Worker {
        action: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },

    /// A config digest that is not an image ID.
    #[error("the config digest `{digest}` is not an image ID")]
    NotAnImageId { digest: String },

    /// Reading the archive's image failed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),

    /// Reading or writing an archive body failed.
    #[error(transparent)]
    Codec(#[from] CodecError),

    /// Naming the pulled archive failed.
    #[error(transparent)]
    Name(#[from] NameError),

    /// The version gives no docker tag.
    #[error(transparent)]
    Version(#[from] VersionError),

    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// Who is asked, for sorting a client error.
pub(super) struct Asked<'a> {
    pub host: &'a str,
    /// Whether credentials were sent.
    pub credentials: bool,
    /// Where they came from.
    pub origin: &'a str,
    /// Whether plain HTTP was used.
    pub http: bool,
}

impl RegistryError {
    /// Sorts an error of the registry client by its variant, HTTP status and envelope codes.
    pub(super) fn from_client(action: String, asked: &Asked<'_>, e: OciDistributionError) -> Self {
        use OciDistributionError as E;
        let host = asked.host.to_string();
        let status = match &e {
            E::RequestError(re) => re.status().map(|c| c.as_u16()),
            E::ServerError { code, .. } => Some(*code),
            _ => None,
        };
        let codes: Vec<&OciErrorCode> = match &e {
            E::RegistryError { envelope, .. } => envelope.errors.iter().map(|e| &e.code).collect(),
            _ => Vec::new(),
        };
        let has = |wanted: &[OciErrorCode]| codes.iter().any(|c| wanted.contains(c));
        let detail = |fallback: &str| match &e {
            E::RegistryError { envelope, .. } => envelope_text(envelope),
            _ => fallback.to_string(),
        };
        if let E::RequestError(re) = &e
            && (re.is_connect() || re.is_timeout())
        {
            return RegistryError::Unreachable {
                action,
                host,
                http: asked.http,
                source: Box::new(e),
            };
        }
        if matches!(e, E::UnauthorizedError { .. } | E::AuthenticationFailure(_))
            || status == Some(401)
            || has(&[OciErrorCode::Unauthorized])
        {
            let detail = detail("unauthorized");
            return if asked.credentials {
                RegistryError::CredentialsRefused {
                    action,
                    host,
                    origin: asked.origin.to_string(),
                    detail,
                    source: Box::new(e),
                }
            } else {
                RegistryError::CredentialsNeeded {
                    action,
                    host,
                    detail,
                    source: Box::new(e),
                }
            };
        }
        if status == Some(403) || has(&[OciErrorCode::Denied]) {
            return RegistryError::Denied {
                action,
                host,
                detail: detail("HTTP 403 forbidden"),
                source: Box::new(e),
            };
        }
        if matches!(e, E::ImageManifestNotFoundError(_))
            || status == Some(404)
            || has(&[
                OciErrorCode::NameUnknown,
                OciErrorCode::ManifestUnknown,
                OciErrorCode::NotFound,
            ])
        {
            return RegistryError::NotFound {
                action,
                detail: detail("HTTP 404"),
                source: Box::new(e),
            };
        }
        match e {
            E::ServerError {
                code, ref message, ..
            } => RegistryError::Status {
                action,
                status: code,
                message: message.clone(),
                source: Box::new(e),
            },
            E::RequestError(_) => RegistryError::RequestFailed {
                action,
                host,
                source: Box::new(e),
            },
            E::RegistryError { ref envelope, .. } => RegistryError::Rejected {
                action,
                detail: envelope_text(envelope),
                source: Box::new(e),
            },
            other => RegistryError::Client {
                action,
                source: Box::new(other),
            },
        }
    }
}

/// An error envelope as `CODE: message; CODE: message`.
fn envelope_text(envelope: &oci_client::errors::OciEnvelope) -> String {
    envelope
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
        .join("; ")
}

fn login_hint(host: &str) -> String {
    format!(
        "pass --username and --password-stdin, or log in with `toolbox login {host}` (or \
         `docker login {host}`)"
    )
}

fn reach_hint(http: bool) -> &'static str {
    if http {
        "check the address and that the registry runs"
    } else {
        "check the address; for a registry that serves plain HTTP, pass --insecure"
    }
}

/// The whole chain of an error's causes, in one line.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn asked(credentials: bool) -> Asked<'static> {
        Asked {
            host: "127.0.0.1:5000",
            credentials,
            origin: "auths in config.json",
            http: true,
        }
    }

    fn envelope(code: OciErrorCode, message: &str) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: message.into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://127.0.0.1:5000/v2/web/manifests/1.0".into(),
        }
    }

    fn server(code: u16, message: &str) -> OciDistributionError {
        OciDistributionError::ServerError {
            code,
            url: "http://127.0.0.1:5000/v2/web/manifests/1.0".into(),
            message: message.into(),
        }
    }

    #[test]
    fn unauthorized_asks_for_or_refuses_credentials() {
        let unauthorized = || OciDistributionError::UnauthorizedError {
            url: "http://127.0.0.1:5000/v2/".into(),
        };
        let e = RegistryError::from_client("pushing".into(), &asked(false), unauthorized());
        assert!(
            matches!(e, RegistryError::CredentialsNeeded { .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("asks for credentials"), "{e}");
        assert!(e.to_string().contains("docker login 127.0.0.1:5000"), "{e}");
        let e = RegistryError::from_client("pushing".into(), &asked(true), server(401, ""));
        assert!(e.to_string().contains("refused the credentials"), "{e}");
        let e = RegistryError::from_client(
            "pushing".into(),
            &asked(true),
            envelope(OciErrorCode::Unauthorized, "authentication required"),
        );
        assert!(
            matches!(e, RegistryError::CredentialsRefused { .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("UNAUTHORIZED: authentication required"),
            "{e}"
        );
    }

    #[test]
    fn not_found_by_status_or_code() {
        for error in [
            server(404, "nothing here"),
            envelope(OciErrorCode::NameUnknown, "repository name not known"),
            envelope(OciErrorCode::ManifestUnknown, "manifest unknown"),
            OciDistributionError::ImageManifestNotFoundError("web:1.0".into()),
        ] {
            let e = RegistryError::from_client("fetching web:1.0".into(), &asked(false), error);
            assert!(matches!(e, RegistryError::NotFound { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.starts_with("fetching web:1.0: not found"), "{text}");
            assert!(text.contains("check the repository and tag"), "{text}");
        }
        // A code that merely mentions another in its message is not that code.
        let e = RegistryError::from_client(
            "pushing".into(),
            &asked(false),
            envelope(
                OciErrorCode::ManifestBlobUnknown,
                "MANIFEST_UNKNOWN? no: blob",
            ),
        );
        assert!(matches!(e, RegistryError::Rejected { .. }), "{e:?}");
        assert!(e.to_string().contains("MANIFEST_BLOB_UNKNOWN"), "{e}");
    }

    #[test]
    fn other_statuses_and_denials() {
        let e = RegistryError::from_client("x".into(), &asked(true), server(403, ""));
        assert_eq!(
            e.to_string(),
            "x: 127.0.0.1:5000 denied access (HTTP 403 forbidden)"
        );
        let e = RegistryError::from_client("x".into(), &asked(true), server(500, "boom"));
        assert_eq!(e.to_string(), "x: HTTP 500: boom");
        assert!(std::error::Error::source(&e).is_some());
        let e = RegistryError::from_client(
            "x".into(),
            &asked(false),
            envelope(OciErrorCode::Other("ARTIFACT_LOCKED".into()), "locked"),
        );
        assert_eq!(e.to_string(), "x: ARTIFACT_LOCKED: locked");
    }

    #[test]
    fn errors_of_the_layers_below_keep_their_words() {
        let inner = IoError::new("out", std::io::Error::other("disk full"));
        let text = inner.to_string();
        let e = RegistryError::from(inner);
        assert!(matches!(e, RegistryError::Io(_)), "{e:?}");
        assert_eq!(e.to_string(), text);
    }
}
