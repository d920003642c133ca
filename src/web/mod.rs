//! A static web server (nginx, an S3 bucket, a CDN) serving an artifacts directory: small files
//! read whole up to a limit, large ones streamed into a writer, every request retried when it
//! fails in passing (a connection refused, reset or cut; HTTP 429 or 5xx, after the
//! `Retry-After` asked for) and a cut download resumed with `Range`. Nothing the server says is
//! trusted: sizes are bounded by what the caller expects, and what it sends is checked by the
//! caller against digests.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Url;

/// Says one line (a retry) to the user.
pub type Notify = Arc<dyn Fn(&str) + Send + Sync>;

/// How long one request may wait for the server's answer to begin.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a download may go without a byte.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// What went wrong with a web server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("`{url}` is not a URL toolbox can download from: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot use the CA certificates in {}: {reason}", path.display())]
    BadCaCert { path: PathBuf, reason: String },
    #[error("cannot set up the HTTP client: {0}")]
    ClientSetup(String),
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error(
        "{url}: the server's certificate is not trusted ({reason}); pass --ca-cert FILE with the \
         CA that signed it"
    )]
    Certificate { url: String, reason: String },
    #[error("{url} is not on the server (HTTP 404)")]
    NotFound { url: String },
    #[error("{url} answered HTTP {status}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Status {
        url: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("the download of {url} broke off after {got} bytes: {reason}")]
    Cut {
        url: String,
        got: u64,
        reason: String,
    },
    #[error(
        "{url} sent more than the {limit} bytes expected of it: the server's copy is not the one named"
    )]
    TooLarge { url: String, limit: u64 },
    #[error(
        "{url} sent {got} bytes where {expected} were expected: the server's copy is not the one named"
    )]
    WrongSize {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error(
        "{url} sent bytes whose digest is {found}, not {expected}: the server's copy is damaged"
    )]
    DigestMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("{url} is not a sound archive: {reason}")]
    Damaged { url: String, reason: String },
    #[error(
        "no OCI image layout (a folder with `oci-layout`) at or above {url}'s folder on the server"
    )]
    NoLayout { url: String },
    #[error("cannot write what {url} sent: {source}")]
    Write {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

impl crate::backoff::Transient for WebError {
    /// Whether trying again may succeed: the network failed in passing, or the server said it
    /// is busy (429) or failing (5xx).
    fn is_transient(&self) -> bool {
        match self {
            WebError::Unreachable { .. } | WebError::Cut { .. } => true,
            WebError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            _ => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            WebError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// How to reach the server.
#[derive(Clone, Default)]
pub struct WebAccess {
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// How many times a request that failed in passing is tried again.
    pub retries: u32,
    /// Where retries are said.
    pub notify: Option<Notify>,
}

/// A client of static web servers: one HTTP client, its retry policy.
pub struct Web {
    http: reqwest::Client,
    retries: u32,
    notify: Option<Notify>,
}

/// Parses `text` as an `http://` or `https://` URL.
pub fn parse_url(text: &str) -> Result<Url, WebError> {
    let bad = |reason: &str| WebError::BadUrl {
        url: text.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("only http:// and https:// are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it names no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("it has a query or a fragment; name the file itself"));
    }
    Ok(url)
}

/// The last segment of `url`'s path, percent-decoded: the file it names.
pub fn file_name(url: &Url) -> Result<String, WebError> {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| WebError::BadUrl {
            url: url.to_string(),
            reason: "it names a folder, not an archive file".into(),
        })?;
    percent_encoding::percent_decode_str(last)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| WebError::BadUrl {
            url: url.to_string(),
            reason: "its file name is not UTF-8".into(),
        })
}

/// The folders `url`'s file is in, the nearest first, up to the server's root (each ends in
/// `/`).
pub fn folders_up(url: &Url) -> Vec<Url> {
    let mut out = Vec::new();
    let mut at = url.clone();
    while let Ok(parent) = at.join(if at.path().ends_with('/') {
        "../"
    } else {
        "./"
    }) {
        if parent == at || out.len() > 64 {
            break;
        }
        out.push(parent.clone());
        at = parent;
    }
    out
}

impl Web {
    /// A client with `access`'s CA certificates and retries.
    pub fn new(access: &WebAccess) -> Result<Web, WebError> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(READ_TIMEOUT);
        if let Some(path) = &access.ca_cert {
            let bad = |reason: String| WebError::BadCaCert {
                path: path.clone(),
                reason,
            };
            let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| WebError::ClientSetup(e.to_string()))?;
        Ok(Web {
            http,
            retries: access.retries,
            notify: access.notify.clone(),
        })
    }

    /// Waits before retry number `retry` after `error`, saying so; `false` when no retry is
    /// left or the error is final.
    async fn wait_to_retry(&self, retry: u32, error: &WebError) -> bool {
        let notice = |message: &str| {
            if let Some(notify) = &self.notify {
                notify(message);
            }
        };
        crate::backoff::wait_to_retry(retry, self.retries, error, &notice).await
    }

    /// `GET url` from byte `from` on; the answer and how many bytes at its start to drop (a
    /// server that ignores `Range` sends the file from its start).
    async fn get(&self, url: &Url, from: u64) -> Result<(reqwest::Response, u64), WebError> {
        let mut request = self.http.get(url.clone()).timeout(ANSWER_TIMEOUT);
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await.map_err(|e| {
            if crate::tls::certificate_refused(&e) {
                WebError::Certificate {
                    url: url.to_string(),
                    reason: reason_of(&e),
                }
            } else {
                WebError::Unreachable {
                    url: url.to_string(),
                    reason: reason_of(&e),
                }
            }
        })?;
        let status = response.status().as_u16();
        match status {
            200 => Ok((response, from)),
            206 => {
                // Content-Range: bytes START-END/TOTAL; a range from elsewhere is not resumed.
                let start = response
                    .headers()
                    .get(reqwest::header::CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("bytes "))
                    .and_then(|v| v.split('-').next())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                if start == Some(from) {
                    Ok((response, 0))
                } else {
                    Err(WebError::Cut {
                        url: url.to_string(),
                        got: from,
                        reason: "the server resumed from another byte than asked".into(),
                    })
                }
            }
            404 | 410 => Err(WebError::NotFound {
                url: url.to_string(),
            }),
            _ => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let message = response
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>();
                Err(WebError::Status {
                    url: url.to_string(),
                    status,
                    message: if message.trim_start().starts_with('<') {
                        String::new()
                    } else {
                        message.trim().to_string()
                    },
                    retry_after,
                })
            }
        }
    }

    /// The whole of a small file, at most `limit` bytes; `None` when the server has none there
    /// (HTTP 404).
    pub async fn small(&self, url: &Url, limit: u64) -> Result<Option<Vec<u8>>, WebError> {
        let mut out = Vec::new();
        match self
            .download(url, &mut out, Some(limit), false, &|_| {})
            .await
        {
            Ok(_) => Ok(Some(out)),
            Err(WebError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Downloads `url` into `out`, retrying and resuming with `Range` where a download broke
    /// off (what was written stays written). With `size`, at most that many bytes are taken
    /// (more is an error) and, when `exact`, fewer is a cut download. `progress` is told each
    /// chunk's length. Returns the bytes written.
    pub async fn download(
        &self,
        url: &Url,
        out: &mut dyn Write,
        size: Option<u64>,
        exact: bool,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<u64, WebError> {
        let mut written = 0u64;
        let mut retry = 0;
        loop {
            match self.attempt(url, out, &mut written, size, progress).await {
                Ok(()) => {
                    let short = exact && size.is_some_and(|s| written < s);
                    if !short {
                        return Ok(written);
                    }
                    let cut = WebError::Cut {
                        url: url.to_string(),
                        got: written,
                        reason: format!(
                            "the answer ended before the {} bytes expected",
                            size.unwrap_or_default()
                        ),
                    };
                    if !self.wait_to_retry(retry, &cut).await {
                        return Err(cut);
                    }
                }
                Err(e) => {
                    if !self.wait_to_retry(retry, &e).await {
                        return Err(e);
                    }
                }
            }
            retry += 1;
        }
    }

    /// One request of [`Web::download`], from byte `*written` on.
    async fn attempt(
        &self,
        url: &Url,
        out: &mut dyn Write,
        written: &mut u64,
        size: Option<u64>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(), WebError> {
        let (response, mut skip) = self.get(url, *written).await?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| WebError::Cut {
                url: url.to_string(),
                got: *written,
                reason: reason_of(&e),
            })?;
            let dropped = skip.min(chunk.len() as u64) as usize;
            skip -= dropped as u64;
            let chunk = &chunk[dropped..];
            if chunk.is_empty() {
                continue;
            }
            if let Some(limit) = size
                && *written + chunk.len() as u64 > limit
            {
                return Err(WebError::TooLarge {
                    url: url.to_string(),
                    limit,
                });
            }
            out.write_all(chunk).map_err(|e| WebError::Write {
                url: url.to_string(),
                source: e,
            })?;
            *written += chunk.len() as u64;
            progress(chunk.len() as u64);
        }
        Ok(())
    }
}

/// A client error in words: its innermost cause (the system's words), not the library's.
fn reason_of(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut at: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(inner) = at {
        reason = inner.to_string();
        at = inner.source();
    }
    if e.is_timeout() {
        format!("no answer in time ({reason})")
    } else {
        reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::Transient;

    #[test]
    fn urls_are_http_with_a_host_and_a_file() {
        assert!(parse_url("http://127.0.0.1:8080/a/web_1.0.0_0123456789ab.ref").is_ok());
        assert!(parse_url("https://cdn.example/x/y.ref").is_ok());
        for bad in [
            "ftp://h/x.ref",
            "cdn.example/x.ref",
            "file:///tmp/x.ref",
            "http://h/x.ref?a=1",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let url = parse_url("http://h/a/web_1.2.3%2Bb7_0123456789ab.ref").unwrap();
        assert_eq!(file_name(&url).unwrap(), "web_1.2.3+b7_0123456789ab.ref");
        assert!(file_name(&parse_url("http://h/a/").unwrap()).is_err());
    }

    #[test]
    fn folders_go_up_to_the_root() {
        let url = parse_url("http://h/a/b/web.ref").unwrap();
        let up: Vec<String> = folders_up(&url).iter().map(Url::to_string).collect();
        assert_eq!(up, ["http://h/a/b/", "http://h/a/", "http://h/"]);
        let url = parse_url("http://h/web.ref").unwrap();
        let up: Vec<String> = folders_up(&url).iter().map(Url::to_string).collect();
        assert_eq!(up, ["http://h/"]);
    }

    #[test]
    fn busy_and_failing_servers_are_tried_again() {
        let status = |status| WebError::Status {
            url: "u".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_transient());
        assert!(status(503).is_transient());
        assert!(!status(403).is_transient());
        assert!(!WebError::NotFound { url: "u".into() }.is_transient());
        assert!(
            !WebError::DigestMismatch {
                url: "u".into(),
                expected: "e".into(),
                found: "f".into()
            }
            .is_transient()
        );
    }
}
