//! `build`: what to build, from the command's flags and the config file's entry for the image.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::config::ImageConfig;
use crate::engine::{BadSecret, BuildSpec, Builder, SecretSpec};
use crate::ops::update;

/// Why a build cannot be described.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Neither the flags nor the config file name a build context.
    #[error(
        "no build context for `{image}`: pass --context DIR, or set images.{image}.context in \
         the config file"
    )]
    NoContext { image: String },
    /// The image, version or repository cannot give a reference (or the platform is not one).
    #[error(transparent)]
    Reference(#[from] crate::Error),
    /// The config file names a network `RUN` steps cannot use.
    #[error(
        "images.{image}.network: `{network}` is not a build network: use default, none or host"
    )]
    BadNetwork { image: String, network: String },
    /// The config file gives a secret that is not one.
    #[error("images.{image}.secrets: {source}")]
    BadSecret {
        image: String,
        #[source]
        source: BadSecret,
    },
}

/// The networks `RUN` steps may use.
pub const NETWORKS: [&str; 3] = ["default", "none", "host"];

/// What the command line says about a build; each `None` falls back on the config file.
#[derive(Debug, Clone, Default)]
pub struct BuildFlags {
    /// The build context.
    pub context: Option<PathBuf>,
    /// The Dockerfile, relative to the working directory.
    pub dockerfile: Option<PathBuf>,
    /// Build arguments; they override the config file's of the same name.
    pub build_args: Vec<(String, String)>,
    /// The engine repository to tag.
    pub repository: Option<String>,
    /// Do not use the engine's build cache.
    pub no_cache: bool,
    /// The stage to build.
    pub target: Option<String>,
    /// Labels; they override the config file's of the same name.
    pub labels: Vec<(String, String)>,
    /// The network of `RUN` steps.
    pub network: Option<String>,
    /// Ask the engine to refresh base images.
    pub pull: bool,
    /// The platform to build for.
    pub platform: Option<String>,
    /// The builder (`--builder`, else `DOCKER_BUILDKIT`); BuildKit when the engine offers it,
    /// when `None`.
    pub builder: Option<Builder>,
    /// Secrets; they override the config file's of the same ID.
    pub secrets: Vec<SecretSpec>,
}

/// The build of `image` at `version`: the flags, else the config file's `entry` for the image.
/// A `--dockerfile` is relative to the working directory; the config file's, to the context.
pub fn spec(
    image: &str,
    version: &str,
    flags: &BuildFlags,
    entry: &ImageConfig,
) -> Result<BuildSpec, Error> {
    let context = flags
        .context
        .clone()
        .or_else(|| entry.context.clone())
        .ok_or_else(|| Error::NoContext {
            image: image.to_string(),
        })?;
    let dockerfile = flags
        .dockerfile
        .clone()
        .or_else(|| entry.dockerfile.as_ref().map(|f| context.join(f)));
    let mut build_args: HashMap<String, String> = entry.build_args.clone().into_iter().collect();
    build_args.extend(flags.build_args.iter().cloned());
    let repository = flags.repository.as_deref().or(entry.repository.as_deref());
    let mut labels: HashMap<String, String> = entry.labels.clone().into_iter().collect();
    labels.extend(flags.labels.iter().cloned());
    let network = flags.network.clone().or_else(|| entry.network.clone());
    if let Some(n) = &network
        && !NETWORKS.contains(&n.as_str())
    {
        return Err(Error::BadNetwork {
            image: image.to_string(),
            network: n.clone(),
        });
    }
    let platform = flags.platform.clone().or_else(|| entry.platform.clone());
    if let Some(p) = &platform {
        crate::oci::Platform::parse(p).map_err(|e| Error::Reference(e.into()))?;
    }
    let mut secrets: Vec<SecretSpec> = Vec::new();
    for text in &entry.secrets {
        let secret: SecretSpec = text.parse().map_err(|source| Error::BadSecret {
            image: image.to_string(),
            source,
        })?;
        if !flags.secrets.iter().any(|s| s.id == secret.id) {
            secrets.retain(|s| s.id != secret.id);
            secrets.push(secret);
        }
    }
    secrets.extend(flags.secrets.iter().cloned());
    Ok(BuildSpec {
        reference: update::reference(image, repository, version)?,
        context,
        dockerfile,
        build_args,
        no_cache: flags.no_cache,
        target: flags.target.clone().or_else(|| entry.target.clone()),
        labels,
        network,
        pull: flags.pull,
        platform,
        builder: flags.builder,
        secrets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn entry() -> ImageConfig {
        ImageConfig {
            context: Some("web".into()),
            dockerfile: Some("Dockerfile.prod".into()),
            build_args: [("PORT", "80"), ("NAME", "x")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            repository: Some("registry.local/team/web".into()),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn the_config_file_fills_what_the_flags_leave_out() {
        let spec = spec("web", "1.0", &BuildFlags::default(), &entry()).unwrap();
        assert_eq!(spec.context, Path::new("web"));
        assert_eq!(
            spec.dockerfile.as_deref(),
            Some(Path::new("web/Dockerfile.prod"))
        );
        assert_eq!(spec.reference, "registry.local/team/web:1.0");
        assert_eq!(spec.build_args["PORT"], "80");
        assert!(!spec.no_cache);
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let flags = BuildFlags {
            context: Some("elsewhere".into()),
            dockerfile: Some("D".into()),
            build_args: vec![("PORT".into(), "8080".into())],
            repository: Some("other".into()),
            no_cache: true,
            target: Some("runtime".into()),
            labels: vec![("team".into(), "ops".into())],
            network: Some("none".into()),
            pull: true,
            platform: None,
            builder: Some(Builder::Legacy),
            secrets: vec!["id=npm,env=NPM_TOKEN".parse().unwrap()],
        };
        let mut file = entry();
        file.target = Some("build".into());
        file.labels = [("team", "dev"), ("tier", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        file.network = Some("host".into());
        file.platform = Some("linux/amd64".into());
        file.secrets = vec!["id=npm,src=.npmrc".into(), "id=gh,env=GH_TOKEN".into()];
        let spec = spec("web", "2", &flags, &file).unwrap();
        assert_eq!(spec.builder, Some(Builder::Legacy));
        assert_eq!(
            spec.secrets,
            vec![
                "id=gh,env=GH_TOKEN".parse().unwrap(),
                "id=npm,env=NPM_TOKEN".parse().unwrap()
            ],
            "the flag's secret replaces the file's of the same ID"
        );
        assert_eq!(spec.target.as_deref(), Some("runtime"));
        assert_eq!(spec.labels["team"], "ops");
        assert_eq!(spec.labels["tier"], "web");
        assert_eq!(spec.network.as_deref(), Some("none"));
        assert_eq!(spec.platform.as_deref(), Some("linux/amd64"));
        assert!(spec.pull);
        assert_eq!(spec.context, Path::new("elsewhere"));
        assert_eq!(spec.dockerfile.as_deref(), Some(Path::new("D")));
        assert_eq!(spec.reference, "other:2");
        assert_eq!(spec.build_args["PORT"], "8080");
        assert_eq!(spec.build_args["NAME"], "x");
        assert!(spec.no_cache);
    }

    #[test]
    fn a_bad_network_or_platform_in_the_file_is_an_error() {
        let mut file = entry();
        file.network = Some("bridge2".into());
        let err = spec("web", "1", &BuildFlags::default(), &file).unwrap_err();
        assert!(err.to_string().contains("images.web.network"), "{err}");
        let mut file = entry();
        file.platform = Some("linux".into());
        assert!(spec("web", "1", &BuildFlags::default(), &file).is_err());
        let mut file = entry();
        file.secrets = vec!["id=k,colour=red".into()];
        let err = spec("web", "1", &BuildFlags::default(), &file).unwrap_err();
        assert!(err.to_string().contains("images.web.secrets"), "{err}");
    }

    #[test]
    fn no_context_names_the_image_and_the_fixes() {
        let err = spec("web", "1", &BuildFlags::default(), &ImageConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`web`")
                && err.contains("--context")
                && err.contains("images.web.context"),
            "{err}"
        );
    }
}
