//! Credentials from the Docker config file: the `auths` of `config.json` in a Docker config
//! directory (the caller chooses which: the command line passes `$DOCKER_CONFIG`, else
//! `~/.docker`).

use std::fs;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

/// The user name and password for `registry` in `config_dir/config.json`, from its `auths`
/// (`auth`, base64 `user:password`; or `username` and `password`). A missing or unreadable
/// file, or no entry for the registry, gives `None`.
pub fn docker_config_credentials(config_dir: &Path, registry: &str) -> Option<(String, String)> {
    let config: Value =
        serde_json::from_slice(&fs::read(config_dir.join("config.json")).ok()?).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_docker_config() {
        let d = tempfile::tempdir().unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode("ann:s3cret");
        fs::write(
            d.path().join("config.json"),
            format!(r#"{{"auths":{{"https://127.0.0.1:5000":{{"auth":"{encoded}"}}}}}}"#),
        )
        .unwrap();
        assert_eq!(
            docker_config_credentials(d.path(), "127.0.0.1:5000"),
            Some(("ann".into(), "s3cret".into()))
        );
        assert_eq!(docker_config_credentials(d.path(), "127.0.0.1:5001"), None);
    }

    #[test]
    fn user_and_password_fields_and_docker_hub_aliases() {
        let d = tempfile::tempdir().unwrap();
        fs::write(
            d.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"username":"bo","password":"pw"}}}"#,
        )
        .unwrap();
        assert_eq!(
            docker_config_credentials(d.path(), "docker.io"),
            Some(("bo".into(), "pw".into()))
        );
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(docker_config_credentials(empty.path(), "docker.io"), None);
    }
}
