//! Checking credentials against a registry before they are kept, as `docker login` does: the
//! API root with the credentials (HTTP Basic); when the registry answers with a Bearer
//! challenge, its token service with the same credentials.

use oci_client::errors::OciDistributionError;

use super::Registry;
use super::delete::http_client;
use super::error::RegistryError;

/// Whether the registry takes its credentials: `Ok` when it does,
/// [`RegistryError::CredentialsRefused`] when it does not.
pub async fn verify(registry: &Registry) -> Result<(), RegistryError> {
    let action = || format!("logging in to {}", registry.host);
    let Some((user, password)) = registry.credentials.clone() else {
        return Err(registry.error(
            action(),
            OciDistributionError::AuthenticationFailure("no credentials".into()),
        ));
    };
    let root = format!("{}/v2/", registry.origin());
    let http = http_client(registry)?;
    let response = http
        .get(&root)
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .map_err(|e| registry.error(action(), e.into()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    if status == reqwest::StatusCode::UNAUTHORIZED {
        let params = bearer_challenge(&response).unwrap_or_default();
        if let Some(realm) = params.iter().find(|(k, _)| k == "realm").map(|(_, v)| v) {
            let mut query: Vec<(&str, &str)> = vec![("account", user.as_str())];
            if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
                query.push(("service", service));
            }
            let token = http
                .get(realm)
                .query(&query)
                .basic_auth(&user, Some(&password))
                .send()
                .await
                .map_err(|e| registry.error(action(), e.into()))?;
            if token.status().is_success() {
                return Ok(());
            }
        }
        return Err(registry.error(
            action(),
            OciDistributionError::UnauthorizedError { url: root },
        ));
    }
    let message = response.text().await.unwrap_or_default();
    Err(registry.error(
        action(),
        OciDistributionError::ServerError {
            code: status.as_u16(),
            url: root,
            message: message.trim().to_string(),
        },
    ))
}

/// Trades the identity token `refresh` (an OAuth2 refresh token, as `docker login` keeps for
/// registries that issue one) for a Bearer token at the registry's token service, scoped to
/// pulling and pushing the registry's repository.
pub(super) async fn trade_identity_token(
    registry: &Registry,
    refresh: &str,
) -> Result<String, RegistryError> {
    let action = || format!("trading the identity token for {}", registry.host);
    let root = format!("{}/v2/", registry.origin());
    let http = http_client(registry)?;
    let response = http
        .get(&root)
        .send()
        .await
        .map_err(|e| registry.error(action(), e.into()))?;
    let refused = |why: &str| {
        registry.error(
            action(),
            OciDistributionError::AuthenticationFailure(why.to_string()),
        )
    };
    let Some(params) = bearer_challenge(&response) else {
        return Err(refused("the registry has no token service to trade it at"));
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let Some(realm) = get("realm") else {
        return Err(refused("the registry's challenge names no token service"));
    };
    let scope = format!("repository:{}:pull,push", registry.repository());
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh.to_string()),
        ("client_id", "toolbox".to_string()),
        ("scope", scope),
    ];
    if let Some(service) = get("service") {
        form.push(("service", service));
    }
    let answer = http
        .post(&realm)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(serde_urlencoded::to_string(&form).unwrap_or_default())
        .send()
        .await
        .map_err(|e| registry.error(action(), e.into()))?;
    if !answer.status().is_success() {
        return Err(refused(&format!(
            "the token service answered HTTP {}",
            answer.status().as_u16()
        )));
    }
    let body = answer
        .bytes()
        .await
        .map_err(|e| registry.error(action(), e.into()))?;
    let doc: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|_| refused("the token service did not answer JSON"))?;
    doc.get("access_token")
        .or_else(|| doc.get("token"))
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| refused("the token service gave no token"))
}

/// The parameters of the answer's Bearer challenge (`WWW-Authenticate: Bearer realm=…`).
fn bearer_challenge(response: &reqwest::Response) -> Option<Vec<(String, String)>> {
    let challenge = response
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)?
        .to_str()
        .ok()?;
    Some(challenge_params(challenge.strip_prefix("Bearer ")?))
}

/// `key="value"` pairs of a `WWW-Authenticate` challenge.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            },
        };
        out.push((key, value.to_string()));
        rest = after.trim_start_matches([',', ' ']);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read() {
        let p = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="a:b:pull""#,
        );
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(p[2].1, "a:b:pull");
        assert_eq!(challenge_params("realm=x, service=y")[1].1, "y");
    }
}
