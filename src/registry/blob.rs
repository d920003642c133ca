//! A blob fetched outside the registry client, so that its answer's headers are seen: from a
//! byte offset on (`Range`), for resuming a download that broke off midway, and with the
//! `Retry-After` of a busy registry.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;

use super::delete::http_client;
use super::error::RegistryError;
use super::retry::parse_retry_after;
use super::{Reference, Registry};

/// The bytes of a blob as they come, and how many at their start to drop (a registry that
/// ignored the `Range` sends the blob from its start).
pub(super) struct BlobFrom {
    pub stream: std::pin::Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    pub skip: u64,
}

/// Blob `digest` of `reference`'s repository from byte `offset` on.
pub(super) async fn blob_from(
    registry: &Registry,
    reference: &Reference,
    digest: &str,
    offset: u64,
) -> Result<BlobFrom, RegistryError> {
    let action = format!("fetching blob {digest} of {reference}");
    let (response, status) = get(
        registry,
        reference,
        &format!("blobs/{digest}"),
        None,
        offset,
        &action,
    )
    .await?;
    let skip = if status == 206 { 0 } else { offset };
    Ok(BlobFrom {
        stream: Box::pin(response.bytes_stream()),
        skip,
    })
}

/// The manifest `reference` names (by digest, else by tag), as the registry stores it.
pub(super) async fn manifest_bytes(
    registry: &Registry,
    reference: &Reference,
    accept: &str,
    limit: usize,
) -> Result<Bytes, RegistryError> {
    let action = format!("fetching the manifest of {reference}");
    let wanted = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_string();
    let (mut response, _) = get(
        registry,
        reference,
        &format!("manifests/{wanted}"),
        Some(accept),
        0,
        &action,
    )
    .await?;
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| registry.error(action.clone(), e.into()))?
    {
        out.extend_from_slice(&chunk);
        if out.len() > limit {
            return Err(RegistryError::TooLarge {
                reference: reference.to_string(),
                digest: wanted,
                limit,
            });
        }
    }
    Ok(Bytes::from(out))
}

/// `GET /v2/REPO/{path}` with the registry's credentials (a Bearer token when its challenge
/// asks for one), from byte `offset` on; the answer when it is 200 or 206, with its status.
/// A busy (429) or failing (5xx) registry gives [`RegistryError::Throttled`] with its
/// `Retry-After`.
async fn get(
    registry: &Registry,
    reference: &Reference,
    path: &str,
    accept: Option<&str>,
    offset: u64,
    action: &str,
) -> Result<(reqwest::Response, u16), RegistryError> {
    let token = registry
        .client
        .auth(reference, registry.auth().await?, RegistryOperation::Pull)
        .await
        .map_err(|e| registry.error(action.to_string(), e))?;
    let url = format!("{}/v2/{}/{path}", registry.origin(), reference.repository());
    let http = http_client(registry)?;
    let mut request = registry.authorize(http.get(&url), token.as_deref());
    if let Some(accept) = accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    if offset > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={offset}-"));
    }
    let response = request
        .send()
        .await
        .map_err(|e| registry.error(action.to_string(), e.into()))?;
    let status = response.status().as_u16();
    match status {
        200 | 206 => Ok((response, status)),
        _ => Err(refusal(registry, action, url, response).await),
    }
}

/// The error an unwanted answer stands for: [`RegistryError::Throttled`] (with its
/// `Retry-After`) for a busy (429) or failing (5xx) registry, else the error its status and
/// error envelope (codes such as MANIFEST_UNKNOWN or UNAUTHORIZED) sort it into.
async fn refusal(
    registry: &Registry,
    action: &str,
    url: String,
    response: reqwest::Response,
) -> RegistryError {
    let status = response.status().as_u16();
    let retry_after = parse_retry_after(response.headers().get(reqwest::header::RETRY_AFTER));
    let message = response.text().await.unwrap_or_default();
    if status == 429 || (500..600).contains(&status) {
        return RegistryError::Throttled {
            action: action.to_string(),
            host: registry.host.clone(),
            status,
            message: message.trim().chars().take(200).collect(),
            retry_after,
        };
    }
    let error = match serde_json::from_str(&message) {
        Ok(envelope) => OciDistributionError::RegistryError { envelope, url },
        Err(_) => OciDistributionError::ServerError {
            code: status,
            url,
            message: message.trim().to_string(),
        },
    };
    registry.error(action.to_string(), error)
}

/// The blob uploaded from `chunks` (each one request) to `target`'s repository, as the
/// distribution API has it: `POST` to start, a `PATCH` per chunk, `PUT` with the digest to end.
/// Returns the blob's digest and size. Done here rather than by the registry client so that a
/// busy registry's `Retry-After` is seen.
pub(super) async fn upload(
    registry: &Registry,
    target: &Reference,
    mut chunks: super::layers::LayerStream,
    action: &str,
) -> Result<(String, u64), RegistryError> {
    let token = registry
        .client
        .auth(target, registry.auth().await?, RegistryOperation::Push)
        .await
        .map_err(|e| registry.error(action.to_string(), e))?;
    let origin = registry.origin();
    let start = format!("{origin}/v2/{}/blobs/uploads/", target.repository());
    let http = http_client(registry)?;
    let authed = |request| registry.authorize(request, token.as_deref());
    let sent = |e: reqwest::Error| registry.error(action.to_string(), e.into());
    // Where the next request of the upload goes: the answer's Location, made absolute.
    let next = |response: &reqwest::Response, url: &str| -> Result<String, RegistryError> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                registry.error(
                    action.to_string(),
                    OciDistributionError::ServerError {
                        code: response.status().as_u16(),
                        url: url.to_string(),
                        message: "the answer names no Location to upload to".into(),
                    },
                )
            })?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else {
                format!("{origin}{location}")
            },
        )
    };
    let response = authed(http.post(&start))
        .header(reqwest::header::CONTENT_LENGTH, 0)
        .send()
        .await
        .map_err(sent)?;
    if response.status().as_u16() != 202 {
        return Err(refusal(registry, action, start, response).await);
    }
    let mut location = next(&response, &start)?;
    let mut hasher = crate::digest::Hasher::default();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| registry.error(action.to_string(), e))?;
        if chunk.is_empty() {
            continue;
        }
        let from = hasher.size();
        hasher.update(&chunk);
        let response = authed(http.patch(&location))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(
                reqwest::header::CONTENT_RANGE,
                format!("{from}-{}", hasher.size() - 1),
            )
            .header(reqwest::header::CONTENT_LENGTH, chunk.len())
            .body(chunk)
            .send()
            .await
            .map_err(sent)?;
        if response.status().as_u16() != 202 {
            return Err(refusal(registry, action, location, response).await);
        }
        location = next(&response, &location)?;
    }
    let (digest, size) = hasher.finish();
    let separator = if location.contains('?') { '&' } else { '?' };
    let end = format!("{location}{separator}digest={}", digest.replace(':', "%3A"));
    let response = authed(http.put(&end))
        .header(reqwest::header::CONTENT_LENGTH, 0)
        .send()
        .await
        .map_err(sent)?;
    if response.status().as_u16() != 201 {
        return Err(refusal(registry, action, end, response).await);
    }
    Ok((digest, size))
}

/// `chunk` without its first `skip` bytes (and what is left to skip after it).
pub(super) fn skip_start(chunk: Bytes, skip: &mut u64) -> Bytes {
    if *skip == 0 {
        return chunk;
    }
    let dropped = (*skip).min(chunk.len() as u64) as usize;
    *skip -= dropped as u64;
    chunk.slice(dropped..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_sent_again_is_dropped() {
        let mut skip = 5;
        assert_eq!(
            skip_start(Bytes::from_static(b"abc"), &mut skip),
            Bytes::new()
        );
        assert_eq!(skip, 2);
        assert_eq!(
            skip_start(Bytes::from_static(b"defgh"), &mut skip),
            Bytes::from_static(b"fgh")
        );
        assert_eq!(skip, 0);
        assert_eq!(
            skip_start(Bytes::from_static(b"ij"), &mut skip),
            Bytes::from_static(b"ij")
        );
    }
}
