//! Raw HTTP/1.1 exchanges with the engine, one connection each, for what the API client cannot
//! do: open a BuildKit session (an HTTP upgrade the engine then speaks gRPC over) and run a
//! BuildKit build, whose trace arrives in messages the client would not hand over.

use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

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

/// Where the engine listens, as the raw connection needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(String),
    Tcp(String),
}

impl Endpoint {
    /// `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`.
    pub(crate) fn parse(address: &str) -> Option<Endpoint> {
        if let Some(path) = address.strip_prefix("unix://") {
            Some(Endpoint::Unix(path.to_string()))
        } else if address.starts_with('/') {
            Some(Endpoint::Unix(address.to_string()))
        } else {
            let rest = address
                .strip_prefix("tcp://")
                .or_else(|| address.strip_prefix("http://"))?;
            let host = rest.split('/').next().unwrap_or(rest);
            (!host.is_empty()).then(|| Endpoint::Tcp(host.to_string()))
        }
    }

    /// The `Host` header's value.
    fn host(&self) -> &str {
        match self {
            Endpoint::Unix(_) => "localhost",
            Endpoint::Tcp(host) => host,
        }
    }

    async fn connect(&self) -> io::Result<Box<dyn Io>> {
        Ok(match self {
            Endpoint::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            Endpoint::Tcp(host) => {
                let stream = tokio::net::TcpStream::connect(host).await?;
                stream.set_nodelay(true)?;
                Box::new(stream)
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_addresses() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock"),
            Some(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("/tmp/d.sock"),
            Some(Endpoint::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:2375"),
            Some(Endpoint::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            Endpoint::parse("http://engine:2375/"),
            Some(Endpoint::Tcp("engine:2375".into()))
        );
        assert_eq!(Endpoint::parse("ssh://host"), None);
        assert_eq!(Endpoint::parse("tcp://"), None);
    }
}
