//! Registry I/O that survives a flaky network: what failed in passing (a connection refused,
//! reset or timed out; HTTP 429; HTTP 5xx) is tried again after a bounded exponential backoff
//! (or the `Retry-After` the registry asked for), at most the registry's `retries` times, each
//! retry said through its notice callback. Other failures (4xx but 429, digests, documents)
//! are final.

use std::future::Future;
use std::time::Duration;

use super::Registry;
use super::error::RegistryError;

use crate::tls::certificate_refused;

use crate::backoff::{self, Transient};

impl Transient for RegistryError {
    fn is_transient(&self) -> bool {
        RegistryError::is_transient(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        RegistryError::retry_after(self)
    }
}

impl RegistryError {
    /// Whether trying again may succeed: the network failed in passing, or the registry said
    /// it is busy (429) or failing (5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            // A certificate the client does not trust is no passing failure.
            RegistryError::Unreachable { source, .. } => !certificate_refused(source.as_ref()),
            RegistryError::RequestFailed { .. }
            | RegistryError::BlobStream { .. }
            | RegistryError::Throttled { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || (500..600).contains(status),
            RegistryError::Rejected { detail, .. } => detail.contains("TOOMANYREQUESTS"),
            _ => false,
        }
    }

    /// How long the registry asked to wait (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl Registry {
    /// Says `message` through the notice callback, if any.
    pub(super) fn notice(&self, message: &str) {
        if let Some(notify) = &self.notify {
            notify(message);
        }
    }

    /// Waits before retry number `retry` after `error`, saying so; `false` when no retry is
    /// left or the error is final.
    pub(super) async fn wait_to_retry(&self, retry: u32, error: &RegistryError) -> bool {
        backoff::wait_to_retry(retry, self.retries, error, &|m| self.notice(m)).await
    }

    /// Runs `op` until it succeeds, fails for good, or the retries are spent.
    pub(super) async fn retrying<T, F, Fut>(&self, mut op: F) -> Result<T, RegistryError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, RegistryError>>,
    {
        let mut retry = 0;
        loop {
            match op().await {
                Err(e) if self.wait_to_retry(retry, &e).await => retry += 1,
                other => return other,
            }
        }
    }
}

/// `Retry-After` as seconds (the HTTP-date form is read as no advice).
pub(super) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    text.parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds() {
        let v = reqwest::header::HeaderValue::from_static("2");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(2)));
        let v = reqwest::header::HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(Some(&v)), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
