//! The BuildKit session: the engine's `/session` endpoint upgraded to a connection on which
//! this side serves gRPC to the builder: health, and the build's secrets. The session lives
//! as long as its [`Session`]; dropping it closes the connection.

use std::collections::HashMap;

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use http::Request;
use hyper_util::rt::TokioIo;
use tonic::server::NamedService;
use tonic::{Response, Status};

use super::dial::{self, Connection, DialError, Endpoint};
use super::filesync::FileSyncService;
use bollard_buildkit_proto::moby::filesync::packet::file_sync_server::FileSyncServer;

/// An open BuildKit session.
pub(crate) struct Session {
    id: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error(transparent)]
    Dial(#[from] DialError),
    #[error("the engine refused a BuildKit session (HTTP {0})")]
    Refused(u16),
    #[error("the BuildKit session's connection failed: {0}")]
    Upgrade(#[source] hyper::Error),
}

impl Session {
    /// Opens a session on the engine at `endpoint` (API prefix `api`, e.g. `/v1.41`) that
    /// answers the builder's requests for `secrets` (ID → content) and for the folders
    /// `files` offers.
    pub(crate) async fn open(
        endpoint: &Endpoint,
        api: &str,
        secrets: HashMap<String, Vec<u8>>,
        files: FileSyncService,
    ) -> Result<Session, SessionError> {
        let id = random_id();
        let methods = [
            format!("/{}/Check", HealthServer::<HealthService>::NAME),
            format!("/{}/GetSecret", SecretsServer::<SecretStore>::NAME),
            format!("/{}/DiffCopy", FileSyncServer::<FileSyncService>::NAME),
            format!("/{}/TarStream", FileSyncServer::<FileSyncService>::NAME),
        ];
        let mut request = Request::post(format!("{api}/session"))
            .header(http::header::CONNECTION, "Upgrade")
            .header(http::header::UPGRADE, "h2c")
            .header("X-Docker-Expose-Session-Uuid", &id)
            .header("X-Docker-Expose-Session-Name", "toolbox")
            .header("X-Docker-Expose-Session-Sharedkey", "");
        for method in &methods {
            request = request.header("X-Docker-Expose-Session-Grpc-Method", method);
        }
        let request = request
            .body(dial::empty())
            .map_err(|_| SessionError::Refused(0))?;
        let response = endpoint.send(request).await?;
        if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(SessionError::Refused(response.status().as_u16()));
        }
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(SessionError::Upgrade)?;
        let connection = Connection::new(Box::new(TokioIo::new(upgraded)));
        let router = tonic::transport::Server::builder()
            .add_service(HealthServer::new(HealthService))
            .add_service(SecretsServer::new(SecretStore(secrets)))
            .add_service(FileSyncServer::new(files));
        let server = tokio::spawn(async move {
            let incoming = futures_util::stream::iter([Ok::<_, std::io::Error>(connection)]);
            // The session ends when the build does (the engine closes it) or when dropped.
            let _ = router.serve_with_incoming(incoming).await;
        });
        Ok(Session { id, server })
    }

    /// The session's ID, for the build request.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }
}

/// 25 random bytes as base-36-ish lower-case letters and digits, as the docker CLI's IDs look.
fn random_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 25];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // No randomness device: the time and the process make an ID unique enough for a
        // session that lives as long as one build.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let seed = now ^ u128::from(std::process::id()) << 64;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// Answers the builder's health checks: serving.
struct HealthService;

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _request: tonic::Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Ok(Response::new(HealthListResponse {
            statuses: HashMap::from([(
                String::new(),
                HealthCheckResponse {
                    status: ServingStatus::Serving as i32,
                },
            )]),
        }))
    }

    type WatchStream = futures_util::stream::Empty<Result<HealthCheckResponse, Status>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch is not served"))
    }
}

/// The build's secrets, by ID. Their content never leaves this store except to the builder.
struct SecretStore(HashMap<String, Vec<u8>>);

#[tonic::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        request: tonic::Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.0.get(id) {
            Some(data) => Ok(Response::new(GetSecretResponse { data: data.clone() })),
            None => Err(Status::not_found(format!(
                "secret {id} not found: pass --secret id={id},src=FILE (or env=VAR)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_distinct_and_plain() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 25);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
    }

    #[tokio::test]
    async fn secrets_are_served_by_id_and_unknown_ones_refused() {
        let store = SecretStore(HashMap::from([("npm".to_string(), b"t0ken".to_vec())]));
        let answer = store
            .get_secret(tonic::Request::new(GetSecretRequest {
                id: "npm".into(),
                annotations: HashMap::new(),
            }))
            .await
            .unwrap();
        assert_eq!(answer.get_ref().data, b"t0ken");
        let missing = store
            .get_secret(tonic::Request::new(GetSecretRequest {
                id: "other".into(),
                annotations: HashMap::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        assert!(!missing.message().contains("t0ken"));
    }
}
