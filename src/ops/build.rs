//! `build`: what to build, from the command's flags and the config file's entry for the image.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::config::ImageConfig;
use crate::engine::BuildSpec;
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
    /// The image, version or repository cannot give a reference.
    #[error(transparent)]
    Reference(#[from] crate::Error),
}

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
    Ok(BuildSpec {
        reference: update::reference(image, repository, version)?,
        context,
        dockerfile,
        build_args,
        no_cache: flags.no_cache,
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
        };
        let spec = spec("web", "2", &flags, &entry()).unwrap();
        assert_eq!(spec.context, Path::new("elsewhere"));
        assert_eq!(spec.dockerfile.as_deref(), Some(Path::new("D")));
        assert_eq!(spec.reference, "other:2");
        assert_eq!(spec.build_args["PORT"], "8080");
        assert_eq!(spec.build_args["NAME"], "x");
        assert!(spec.no_cache);
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
