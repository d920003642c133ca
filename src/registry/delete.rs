//! Deleting a manifest. oci-client has no request for it: this is a plain `DELETE` with the
//! client's token, or the credentials, over the same TLS settings.

use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;

use super::client::install_crypto_provider;
use super::error::RegistryError;
use super::{Reference, Registry};

/// Deletes the manifest `reference` names (a tag is resolved to its digest first, so that the
/// manifest itself goes, as the registry API requires). Returns the digest deleted.
pub async fn delete(registry: &Registry, reference: &Reference) -> Result<String, RegistryError> {
    let (_, digest) = registry.manifest(reference).await?;
    let action = || format!("deleting {reference}");
    let token = registry
        .client
        .auth(reference, registry.auth().await?, RegistryOperation::Push)
        .await
        .map_err(|e| registry.error(action(), e))?;
    let url = format!(
        "{}/v2/{}/manifests/{digest}",
        registry.origin(),
        reference.repository()
    );
    let http = http_client(registry)?;
    let response = registry
        .authorize(http.delete(&url), token.as_deref())
        .send()
        .await
        .map_err(|e| registry.error(action(), e.into()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(digest);
    }
    if status == reqwest::StatusCode::METHOD_NOT_ALLOWED {
        return Err(RegistryError::DeleteUnsupported {
            reference: reference.to_string(),
        });
    }
    let body = response.text().await.unwrap_or_default();
    let failure = OciDistributionError::ServerError {
        code: status.as_u16(),
        url,
        message: body.trim().to_string(),
    };
    Err(registry.error(action(), failure))
}

/// A client with the registry's extra CA, if any.
pub(super) fn http_client(registry: &Registry) -> Result<reqwest::Client, RegistryError> {
    install_crypto_provider();
    let mut builder = reqwest::Client::builder();
    if let Some((path, pem)) = &registry.ca {
        let bad = |e: reqwest::Error| RegistryError::BadCaCert {
            path: path.clone(),
            source: Box::new(e.into()),
        };
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem).map_err(bad)?);
        return builder.build().map_err(bad);
    }
    builder.build().map_err(|e| RegistryError::ClientSetup {
        host: registry.host.clone(),
        source: Box::new(e.into()),
    })
}
