//! Trying again what failed in passing (a connection refused, reset or cut; HTTP 429 or 5xx):
//! after a bounded exponential backoff, or the `Retry-After` the server asked for, at most a
//! given number of times, each retry said in one line. The one policy of every HTTP client
//! (registries, web servers).

use std::fmt::Display;
use std::time::Duration;

/// The first wait; each retry doubles it.
const FIRST_WAIT: Duration = Duration::from_millis(500);
/// The longest wait between two tries (a `Retry-After` longer than this is cut to it).
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// An error that may or may not pass if tried again.
pub trait Transient: Display {
    /// Whether trying again may succeed.
    fn is_transient(&self) -> bool;
    /// How long the server asked to wait (`Retry-After`).
    fn retry_after(&self) -> Option<Duration>;
}

/// The wait before retry number `retry` (0-based) when the server named none.
pub fn backoff(retry: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1u32 << retry.min(16))
        .min(Duration::from_secs(8))
}

/// Waits before retry number `retry` (of `retries`) after `error`, saying so through
/// `notice`; `false` when no retry is left or the error is final.
pub async fn wait_to_retry(
    retry: u32,
    retries: u32,
    error: &impl Transient,
    notice: &(dyn Fn(&str) + Sync),
) -> bool {
    if retry >= retries || !error.is_transient() {
        return false;
    }
    let wait = error
        .retry_after()
        .unwrap_or_else(|| backoff(retry))
        .min(LONGEST_WAIT);
    notice(&format!(
        "{error}; retrying in {:.1} s (retry {} of {retries})",
        wait.as_secs_f64(),
        retry + 1,
    ));
    tokio::time::sleep(wait).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_bounded() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(10), Duration::from_secs(8));
        assert_eq!(backoff(40), Duration::from_secs(8));
    }
}
