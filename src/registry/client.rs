//! One registry host: how it is reached (HTTPS, plain HTTP for `--insecure` and loopback
//! addresses, an extra CA), with which credentials, and the client that talks to it.

use std::fs;
use std::path::PathBuf;

use oci_client::Client;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;

use super::Reference;
use super::error::{Asked, RegistryError};
use crate::docker_cli::DockerConfig;

/// How to reach registries: plain HTTP, an extra CA, credentials.
#[derive(Clone, Default)]
pub struct Access {
    /// Plain HTTP for every registry (always used for loopback addresses, unless a CA is given).
    pub insecure: bool,
    /// A PEM file of CA certificates to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// A user name and password, instead of those of the Docker config file.
    pub credentials: Option<(String, String)>,
    /// The Docker config directory whose `config.json` gives the credentials (its `auths`)
    /// when `credentials` is `None`; `None` reads no file. The command line passes
    /// `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config: Option<PathBuf>,
    /// How many times a request that failed in passing is tried again (`--retries`).
    pub retries: u32,
    /// Told of each retry, in one line.
    pub notify: Option<Notify>,
}

/// A callback told of retries.
pub type Notify = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Access")
            .field("insecure", &self.insecure)
            .field("ca_cert", &self.ca_cert)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("docker_config", &self.docker_config)
            .field("retries", &self.retries)
            .finish()
    }
}

/// One registry host, with its credentials.
pub struct Registry {
    pub(super) client: Client,
    /// Basic credentials, or none; see [`Registry::auth`].
    auth: RegistryAuth,
    /// An identity token (an OAuth2 refresh token) to trade for a Bearer token.
    identity_token: Option<String>,
    /// The Bearer token the identity token was traded for.
    bearer: tokio::sync::OnceCell<RegistryAuth>,
    /// The repository the registry was opened for (the identity token's scope).
    repository: String,
    pub(super) credentials: Option<(String, String)>,
    /// Where the credentials came from, in words.
    pub(super) origin: String,
    pub(super) host: String,
    pub(super) http: bool,
    /// The `--ca-cert` file and its bytes, for requests made outside the client.
    pub(super) ca: Option<(PathBuf, Vec<u8>)>,
    /// Retries of what fails in passing.
    pub(super) retries: u32,
    pub(super) notify: Option<Notify>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        write!(f, "Registry({})", self.host)
    }
}

/// Whether a registry host is a loopback address, where plain HTTP is allowed unasked.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) use crate::tls::install_crypto_provider;

impl Registry {
    /// A client for the registry of `reference`.
    pub fn for_reference(
        reference: &Reference,
        access: &Access,
    ) -> Result<Registry, RegistryError> {
        install_crypto_provider();
        let host = reference.resolve_registry().to_string();
        // Loopback registries speak plain HTTP unless a CA says they have a certificate.
        let http = access.insecure || (is_loopback(&host) && access.ca_cert.is_none());
        let mut config = ClientConfig {
            protocol: if http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            ..Default::default()
        };
        let ca = match &access.ca_cert {
            Some(path) => {
                let pem = fs::read(path).map_err(|source| RegistryError::ReadCaCert {
                    path: path.clone(),
                    source,
                })?;
                config.extra_root_certificates.push(Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                });
                Some((path.clone(), pem))
            }
            None => None,
        };
        let client = Client::try_from(config).map_err(|e| {
            let source = Box::new(e);
            match &ca {
                Some((path, _)) => RegistryError::BadCaCert {
                    path: path.clone(),
                    source,
                },
                None => RegistryError::ClientSetup {
                    host: host.clone(),
                    source,
                },
            }
        })?;
        let mut identity_token = None;
        let (credentials, origin) = match (&access.credentials, &access.docker_config) {
            (Some(given), _) => (
                Some(given.clone()),
                "--username and --password-stdin".to_string(),
            ),
            (None, Some(dir)) => {
                match DockerConfig::load(dir)?.credentials(reference.registry())? {
                    Some(found) if found.identity_token => {
                        identity_token = Some(found.secret);
                        (None, found.origin)
                    }
                    Some(found) => (Some((found.username, found.secret)), found.origin),
                    None => (None, String::new()),
                }
            }
            (None, None) => (None, String::new()),
        };
        let auth = match &credentials {
            Some((user, password)) => RegistryAuth::Basic(user.clone(), password.clone()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client,
            auth,
            identity_token,
            bearer: tokio::sync::OnceCell::new(),
            repository: reference.repository().to_string(),
            credentials,
            origin,
            host,
            http,
            ca,
            retries: access.retries,
            notify: access.notify.clone(),
        })
    }

    /// `http://HOST` or `https://HOST`, for requests made outside the client.
    pub(super) fn origin(&self) -> String {
        let scheme = if self.http { "http" } else { "https" };
        format!("{scheme}://{}", self.host)
    }

    /// `request` with the credentials: the Bearer `token` the client obtained for it, else
    /// the Basic credentials, else none.
    pub(super) fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        match (token, &self.credentials) {
            (Some(token), _) => request.bearer_auth(token),
            (None, Some((user, password))) => request.basic_auth(user, Some(password)),
            (None, None) => request,
        }
    }

    /// The registry's host (`HOST[:PORT]`, `index.docker.io` for Docker Hub).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Hands the credentials to the client before a request to `reference`'s registry (an
    /// identity token that cannot be traded shows at the request, through [`Registry::auth`]).
    pub(super) async fn ready(&self, reference: &Reference) {
        if let Ok(auth) = self.auth().await {
            self.client
                .store_auth_if_needed(reference.resolve_registry(), auth)
                .await;
        }
    }

    /// The credentials to send: Basic ones, none, or the Bearer token an identity token is
    /// traded for at the registry's token service (OAuth2 `refresh_token` grant), once.
    pub(super) async fn auth(&self) -> Result<&RegistryAuth, RegistryError> {
        let Some(refresh) = &self.identity_token else {
            return Ok(&self.auth);
        };
        self.bearer
            .get_or_try_init(|| async {
                super::login::trade_identity_token(self, refresh)
                    .await
                    .map(RegistryAuth::Bearer)
            })
            .await
    }

    /// The repository the registry was opened for.
    pub(super) fn repository(&self) -> &str {
        &self.repository
    }

    /// Turns a client error into one a user can act on; credentials never appear in it.
    pub(super) fn error(&self, action: String, e: OciDistributionError) -> RegistryError {
        let asked = Asked {
            host: &self.host,
            credentials: self.credentials.is_some() || self.identity_token.is_some(),
            origin: &self.origin,
            http: self.http,
        };
        RegistryError::from_client(action, &asked, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:5000",
            "localhost",
            "localhost:80",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "registry.example.com",
            "10.0.0.1:5000",
            "docker.io",
            "[2001:db8::1]:5",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn clients_build_with_the_ring_provider() {
        let at = |text: &str| super::super::parse_reference(text).unwrap();
        let registry =
            Registry::for_reference(&at("127.0.0.1:5000/web:1.0"), &Access::default()).unwrap();
        assert!(registry.http, "loopback speaks plain HTTP");
        assert_eq!(registry.host(), "127.0.0.1:5000");
        let insecure = Access {
            insecure: true,
            ..Access::default()
        };
        assert!(
            Registry::for_reference(&at("registry.example.com/web:1.0"), &insecure)
                .unwrap()
                .http
        );
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[test]
    fn a_ca_file_is_read_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let reference = super::super::parse_reference("127.0.0.1:5000/web:1.0").unwrap();
        let missing = Access {
            ca_cert: Some(d.path().join("none.pem")),
            ..Access::default()
        };
        let e = Registry::for_reference(&reference, &missing).unwrap_err();
        assert!(matches!(e, RegistryError::ReadCaCert { .. }), "{e:?}");
        assert!(e.to_string().contains("none.pem"), "{e}");
        let garbage = d.path().join("garbage.pem");
        fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let bad = Access {
            ca_cert: Some(garbage),
            ..Access::default()
        };
        let e = Registry::for_reference(&reference, &bad).unwrap_err();
        assert!(matches!(e, RegistryError::BadCaCert { .. }), "{e:?}");
        assert!(e.to_string().contains("garbage.pem"), "{e}");
        // A real CA: both clients trust it besides the system's, and a loopback registry with
        // a CA is reached over HTTPS.
        let good = d.path().join("ca.pem");
        fs::write(&good, TEST_CA).unwrap();
        let with_ca = Access {
            ca_cert: Some(good),
            ..Access::default()
        };
        let registry = Registry::for_reference(&reference, &with_ca).unwrap();
        assert!(!registry.http);
        super::super::delete::http_client(&registry).unwrap();
    }

    /// A self-signed P-256 CA certificate (valid until 2126), only for parsing.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUWzzxcXyCDOyVPAnVhHOzAJ56qfcwCgYIKoZIzj0EAwIw
GjEYMBYGA1UEAwwPdG9vbGJveCB0ZXN0IENBMCAXDTI2MTEyNDA0NDMyM1oYDzIx
MjYxMDMxMDQ0MzIzWjAaMRgwFgYDVQQDDA90b29sYm94IHRlc3QgQ0EwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAT6IFGodJ63SjcJAKxbuQzoO7i7DWJlaY+KMmhE
2D18c9h1sM0thNx/1xWKVePuiAKCBseEBDq1dMF5grPGn3jxo1MwUTAdBgNVHQ4E
FgQU0lDAHljFK4VNUXGzoP6WoABLtRUwHwYDVR0jBBgwFoAU0lDAHljFK4VNUXGz
oP6WoABLtRUwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAnDwW
N0nwElLQ2lq4Gz603jjg+PMRnC4JUA28ZgdqC3sCIEwdAv3L59lq7VhIcH9sln8w
xPfdYLiF0+uxg/XrjE+F
-----END CERTIFICATE-----
";

    #[test]
    fn no_password_in_debug_output() {
        let access = Access {
            credentials: Some(("ann".into(), "s3cret".into())),
            ..Access::default()
        };
        let text = format!("{access:?}");
        assert!(text.contains("ann") && !text.contains("s3cret"), "{text}");
    }
}
