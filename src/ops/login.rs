//! `login` and `logout`: credentials checked against the registry, then kept where the docker
//! CLI keeps them (its credential helper, else `auths` in its config file); or forgotten.

use std::path::Path;

use crate::docker_cli::{self, DockerConfig};
use crate::error::Result;
use crate::registry::{self, Access, Registry};

/// What `login` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoggedIn {
    /// The key the credentials are kept under (`HOST[:PORT]`, or Docker Hub's server key).
    pub server: String,
    /// Where they are kept, in words.
    pub kept_in: String,
}

/// The registry host of `text` (`HOST[:PORT]`, with or without a scheme or a path).
fn host_of(text: &str) -> &str {
    text.trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default()
}

/// Checks `username` and `password` against `server`'s registry (reached as `access` says),
/// then keeps them in the docker CLI's configuration under `config_dir`. Nothing is kept when
/// the registry refuses them.
pub async fn login(
    server: &str,
    username: &str,
    password: &str,
    access: &Access,
    config_dir: &Path,
) -> Result<LoggedIn> {
    let host = host_of(server);
    let reference = registry::parse_reference(&format!("{host}/toolbox/login"))?;
    let checking = Access {
        credentials: Some((username.to_string(), password.to_string())),
        ..access.clone()
    };
    let registry = Registry::for_reference(&reference, &checking)?;
    registry::verify_login(&registry).await?;
    let mut config = DockerConfig::load(config_dir)?;
    let kept_in = config.store(host, username, password)?;
    Ok(LoggedIn {
        server: docker_cli::server_key(host),
        kept_in,
    })
}

/// Forgets `server`'s credentials; returns its key and whether there were any.
pub fn logout(server: &str, config_dir: &Path) -> Result<(String, bool)> {
    let host = host_of(server);
    let mut config = DockerConfig::load(config_dir)?;
    let had = config.erase(host)?;
    Ok((docker_cli::server_key(host), had))
}
