//! Connections to the engine, whatever its address: a unix socket, TCP (plain or TLS with the
//! docker CLI's certificate files), or ssh (the system's `ssh` running `docker system
//! dial-stdio` on the remote side, as the docker CLI does). The API client (bollard) sends its
//! requests over these connections; raw HTTP/1.1 exchanges on connections of their own serve
//! what it cannot do: the BuildKit session (an HTTP upgrade the engine then speaks gRPC over)
//! and the BuildKit build, whose trace arrives in messages it would not hand over.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// A byte stream to the engine.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// The body of a request.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// An empty body.
pub(crate) fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// The TLS files of an engine address, as the docker CLI takes them (`DOCKER_CERT_PATH` or a
/// context's TLS folder: `ca.pem`, `cert.pem`, `key.pem`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsFiles {
    /// The CA that signed the engine's certificate (needed to verify it).
    pub ca: Option<PathBuf>,
    /// The client certificate and its key, when the engine asks for one.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Check the engine's certificate (`DOCKER_TLS_VERIFY`; a context's `SkipTLSVerify` off).
    pub verify: bool,
}

impl TlsFiles {
    /// The files of `dir` that exist.
    pub fn in_dir(dir: &Path, verify: bool) -> TlsFiles {
        let file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        TlsFiles {
            ca: file("ca.pem"),
            cert: file("cert.pem"),
            key: file("key.pem"),
            verify,
        }
    }
}

/// Where the engine listens.
#[derive(Clone)]
pub(crate) enum Endpoint {
    Unix(String),
    Tcp {
        host: String,
        tls: Option<Arc<rustls::ClientConfig>>,
        server_name: String,
    },
    Ssh(Ssh),
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix {p}"),
            Endpoint::Tcp { host, tls, .. } => {
                write!(f, "tcp {host}{}", if tls.is_some() { " tls" } else { "" })
            }
            Endpoint::Ssh(s) => write!(f, "ssh {s:?}"),
        }
    }
}

/// An ssh destination: `ssh://[user@]host[:port][/path of the engine's socket]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ssh {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    socket: Option<String>,
}

impl Endpoint {
    /// The endpoint of `address` (`unix:///path`, `/path`, `tcp://host[:port]`,
    /// `http://host:port`, `https://host[:port]`, `ssh://[user@]host[:port][/socket]`), with
    /// TLS when `tls` gives files or the scheme is `https`. The reason when it is none.
    pub(crate) fn new(address: &str, tls: Option<&TlsFiles>) -> Result<Endpoint, String> {
        if let Some(path) = address.strip_prefix("unix://") {
            return Ok(Endpoint::Unix(path.to_string()));
        }
        if address.starts_with('/') {
            return Ok(Endpoint::Unix(address.to_string()));
        }
        if let Some(rest) = address.strip_prefix("ssh://") {
            return parse_ssh(rest).map(Endpoint::Ssh);
        }
        let (scheme, rest) = address.split_once("://").ok_or_else(|| {
            "the address is not unix:///PATH, tcp://HOST:PORT, https://HOST:PORT or \
             ssh://[USER@]HOST"
                .to_string()
        })?;
        let host_port = rest.split('/').next().unwrap_or(rest);
        if host_port.is_empty() || !matches!(scheme, "tcp" | "http" | "https") {
            return Err(format!(
                "`{scheme}://` is not an engine address scheme: use unix://, tcp://, https:// \
                 or ssh://"
            ));
        }
        let use_tls = tls.is_some() || scheme == "https";
        let (name, port) = split_host_port(host_port);
        let port = port.unwrap_or(if use_tls { "2376" } else { "2375" });
        let host = format!("{name}:{port}");
        let tls = match (use_tls, tls) {
            (false, _) => None,
            (true, files) => Some(Arc::new(tls_config(files.unwrap_or(&TlsFiles {
                verify: true,
                ..TlsFiles::default()
            }))?)),
        };
        Ok(Endpoint::Tcp {
            host,
            tls,
            server_name: name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        })
    }

    /// `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`, without TLS.
    #[cfg(test)]
    pub(crate) fn parse(address: &str) -> Option<Endpoint> {
        Endpoint::new(address, None).ok()
    }

    /// The `Host` header's value.
    fn host(&self) -> &str {
        match self {
            Endpoint::Tcp { host, .. } => host,
            _ => "localhost",
        }
    }

    /// A new connection.
    pub(crate) async fn connect(&self) -> io::Result<Box<dyn Io>> {
        Ok(match self {
            Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.map_err(
                |e| match e.kind() {
                    io::ErrorKind::NotFound => {
                        io::Error::new(e.kind(), format!("no socket at {path}"))
                    }
                    _ => e,
                },
            )?),
            Endpoint::Tcp {
                host,
                tls,
                server_name,
            } => {
                let stream = tokio::net::TcpStream::connect(host).await?;
                stream.set_nodelay(true)?;
                match tls {
                    None => Box::new(stream),
                    Some(config) => {
                        let name = ServerName::try_from(server_name.clone()).map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("`{server_name}` is not a host name for TLS"),
                            )
                        })?;
                        let connector = tokio_rustls::TlsConnector::from(config.clone());
                        let tls = connector.connect(name, stream).await.map_err(tls_failure)?;
                        Box::new(tls)
                    }
                }
            }
            Endpoint::Ssh(ssh) => Box::new(SshStream::spawn(ssh)?),
        })
    }

    /// Sends `request` (its URI a path and query) on a connection of its own, kept open for
    /// an upgrade, and returns the engine's answer.
    pub(crate) async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<Incoming>, DialError> {
        let stream = self.connect().await.map_err(DialError::Connect)?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(DialError::Http)?;
        tokio::spawn(async move {
            // Its end is seen by the request's side as a closed body or upgrade.
            let _ = connection.with_upgrades().await;
        });
        request.headers_mut().insert(
            http::header::HOST,
            http::HeaderValue::from_str(self.host())
                .unwrap_or(http::HeaderValue::from_static("localhost")),
        );
        sender.send_request(request).await.map_err(DialError::Http)
    }
}

/// `host:port`, `[v6]:port`, or a host alone.
fn split_host_port(text: &str) -> (&str, Option<&str>) {
    if let Some(end) = text.find(']') {
        let (host, rest) = text.split_at(end + 1);
        return (host, rest.strip_prefix(':').filter(|p| !p.is_empty()));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            (host, Some(port))
        }
        _ => (text, None),
    }
}

fn parse_ssh(rest: &str) -> Result<Ssh, String> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, hp)) => (Some(user.to_string()), hp),
        None => (None, authority),
    };
    let (host, port) = split_host_port(host_port);
    if host.is_empty() {
        return Err("ssh:// names no host".into());
    }
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("`{p}` is not an ssh port"))?,
        ),
        None => None,
    };
    Ok(Ssh {
        user,
        host: host.to_string(),
        port,
        socket: path.filter(|p| *p != "/").map(str::to_string),
    })
}

/// What the TLS handshake's failure means, in words a person can act on.
fn tls_failure(e: io::Error) -> io::Error {
    let text = e.to_string();
    let reason = if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!("TLS: the engine's certificate is not trusted by the CA (ca.pem) ({text})")
    } else if text.contains("CertificateRequired") || text.contains("certificate required") {
        format!("TLS: the engine asks for a client certificate (cert.pem, key.pem) ({text})")
    } else if text.contains("NotValidForName") {
        format!("TLS: the engine's certificate is not for this host name ({text})")
    } else {
        format!("TLS handshake failed: {text}")
    };
    io::Error::new(e.kind(), reason)
}

/// The TLS client configuration `files` describe.
fn tls_config(files: &TlsFiles) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if files.verify {
        let Some(ca) = &files.ca else {
            return Err(
                "TLS verification is on (DOCKER_TLS_VERIFY) but there is no ca.pem to verify \
                 the engine's certificate with (DOCKER_CERT_PATH)"
                    .into(),
            );
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in read_certs(ca)? {
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("{}: not a PEM private key: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("{}: {e}", cert.display()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no certificate", path.display()));
    }
    Ok(certs)
}

/// `SkipTLSVerify`, or TLS without `DOCKER_TLS_VERIFY`: the engine's certificate is not checked
/// (as the docker CLI does then); signatures still are.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `ssh … docker system dial-stdio`: its stdout is what the engine says, its stdin what it is
/// told. When ssh ends before the engine said anything, reading fails with what ssh said on
/// stderr (authentication refused, host unknown, no docker on the remote side).
struct SshStream {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
    stderr: Arc<Mutex<Option<String>>>,
    stderr_done: tokio::sync::watch::Receiver<bool>,
}

impl SshStream {
    fn spawn(ssh: &Ssh) -> io::Result<SshStream> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(["-o", "ConnectTimeout=30", "-T"]);
        if let Some(user) = &ssh.user {
            cmd.args(["-l", user]);
        }
        if let Some(port) = ssh.port {
            cmd.args(["-p", &port.to_string()]);
        }
        cmd.args(["--", &ssh.host, "docker"]);
        if let Some(socket) = &ssh.socket {
            cmd.args(["--host", &format!("unix://{socket}")]);
        }
        cmd.args(["system", "dial-stdio"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run ssh (the system's OpenSSH client): {e}"),
            )
        })?;
        let missing = || io::Error::other("ssh's pipes are missing");
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let mut err_pipe = child.stderr.take().ok_or_else(missing)?;
        let stderr = Arc::new(Mutex::new(None));
        let (done_tx, stderr_done) = tokio::sync::watch::channel(false);
        let collected = stderr.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let _ = err_pipe.read_to_string(&mut text).await;
            if let Ok(mut slot) = collected.lock() {
                *slot = Some(text);
            }
            let _ = done_tx.send(true);
        });
        Ok(SshStream {
            child,
            stdin,
            stdout,
            stderr,
            stderr_done,
        })
    }
}

impl AsyncRead for SshStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stdout).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before => {
                // End of output: ssh is ending. Wait for what it said, then tell it.
                if !*self.stderr_done.borrow() {
                    let mut changed = Box::pin(self.stderr_done.changed());
                    if changed.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                let said = self
                    .stderr
                    .lock()
                    .ok()
                    .and_then(|s| s.clone())
                    .unwrap_or_default();
                let failed = matches!(self.child.try_wait(), Ok(Some(status)) if !status.success());
                let said = said.trim();
                if failed || !said.is_empty() {
                    let said = if said.is_empty() {
                        "ssh ended without a connection".to_string()
                    } else {
                        let last = said.lines().last().unwrap_or(said);
                        last.strip_prefix("ssh: ").unwrap_or(last).to_string()
                    };
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("ssh: {said}"),
                    )));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl AsyncWrite for SshStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// Why a raw exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DialError {
    #[error("cannot connect: {0}")]
    Connect(#[source] io::Error),
    #[error("the connection failed: {0}")]
    Http(#[source] hyper::Error),
}

/// The chunks of a response's body, as they arrive.
pub(crate) fn chunks(body: Incoming) -> Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> {
    Box::pin(
        http_body_util::BodyStream::new(body).filter_map(|frame| async move {
            match frame {
                Ok(frame) => frame.into_data().ok().map(Ok),
                Err(e) => Some(Err(io::Error::other(e))),
            }
        }),
    )
}

/// Connections for the API client's pool: each one a new connection to the endpoint.
#[derive(Clone)]
pub(crate) struct Connector(pub Arc<Endpoint>);

/// A connection as the pool (or the BuildKit session's server) keeps it.
pub(crate) struct Connection(Box<dyn Io>);

impl Connection {
    pub(crate) fn new(io: Box<dyn Io>) -> Connection {
        Connection(io)
    }
}

impl hyper_util::client::legacy::connect::Connection for Connection {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<Connection>;
    type Error = io::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let endpoint = self.0.clone();
        Box::pin(async move { Ok(TokioIo::new(Connection(endpoint.connect().await?))) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(address: &str) -> String {
        format!("{:?}", Endpoint::parse(address).unwrap())
    }

    #[test]
    fn endpoints_from_addresses() {
        assert_eq!(
            describe("unix:///var/run/docker.sock"),
            "unix /var/run/docker.sock"
        );
        assert_eq!(describe("/tmp/d.sock"), "unix /tmp/d.sock");
        assert_eq!(describe("tcp://127.0.0.1:2375"), "tcp 127.0.0.1:2375");
        assert_eq!(describe("http://engine:2375/"), "tcp engine:2375");
        assert_eq!(describe("tcp://engine"), "tcp engine:2375");
        assert!(Endpoint::parse("tcp://").is_none());
        assert!(Endpoint::parse("ftp://x").is_none());
    }

    #[test]
    fn ssh_destinations_as_docker_reads_them() {
        let ssh = |a: &str| match Endpoint::parse(a) {
            Some(Endpoint::Ssh(s)) => s,
            other => panic!("{a}: {other:?}"),
        };
        assert_eq!(
            ssh("ssh://ci@build-host:2222"),
            Ssh {
                user: Some("ci".into()),
                host: "build-host".into(),
                port: Some(2222),
                socket: None
            }
        );
        let s = ssh("ssh://build-host/run/user/docker.sock");
        assert_eq!(s.socket.as_deref(), Some("/run/user/docker.sock"));
        assert_eq!(s.user, None);
        assert!(Endpoint::parse("ssh://").is_none());
        assert!(Endpoint::parse("ssh://h:99999").is_none());
    }

    #[test]
    fn tls_needs_a_ca_to_verify_with() {
        let err = Endpoint::new(
            "tcp://127.0.0.1:2376",
            Some(&TlsFiles {
                verify: true,
                ..TlsFiles::default()
            }),
        )
        .unwrap_err();
        assert!(err.contains("ca.pem"), "{err}");
        let unverified = Endpoint::new(
            "tcp://127.0.0.1",
            Some(&TlsFiles {
                verify: false,
                ..TlsFiles::default()
            }),
        )
        .unwrap();
        assert_eq!(format!("{unverified:?}"), "tcp 127.0.0.1:2376 tls");
    }
}
