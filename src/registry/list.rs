//! Listing: the tags of a repository, the repositories of a registry.

use super::error::RegistryError;
use super::{Reference, Registry};

/// The tags of a repository, sorted.
pub async fn tags(
    registry: &Registry,
    repository: &Reference,
) -> Result<Vec<String>, RegistryError> {
    let response = registry
        .retrying(|| async {
            registry.ready(repository).await;
            registry
                .client
                .list_tags(repository, registry.auth().await?, None, None)
                .await
                .map_err(|e| {
                    registry.error(
                        format!("listing the tags of {}", repository.repository()),
                        e,
                    )
                })
        })
        .await?;
    let mut tags = response.tags;
    tags.sort();
    Ok(tags)
}

/// The repositories of a registry, sorted; `host` is any reference on it.
pub async fn catalog(registry: &Registry, host: &Reference) -> Result<Vec<String>, RegistryError> {
    let response = registry
        .retrying(|| async {
            registry.ready(host).await;
            registry
                .client
                .catalog(host, registry.auth().await?, None, None)
                .await
                .map_err(|e| {
                    registry.error(format!("listing the repositories of {}", registry.host), e)
                })
        })
        .await?;
    let mut repositories = response.repositories;
    repositories.sort();
    Ok(repositories)
}
