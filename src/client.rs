//! A small client for the service's socket: `strongroom issue`, the benchmark and the tests use
//! it. HTTP/1.1 over a Unix socket with hyper.

use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// One open connection to the service.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

impl Client {
    /// Connects to the socket.
    pub async fn connect(socket: &Path) -> Result<Client, String> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        drop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        Ok(Client { sender })
    }

    /// Sends one request (`body` is JSON when given).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, String> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| e.to_string())?,
            None => Vec::new(),
        };
        self.request_bytes(method, path, bytes, "application/json")
            .await
    }

    /// Sends one request whose JSON body is already encoded, asking for `accept`.
    pub async fn request_bytes(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        accept: &str,
    ) -> Result<Reply, String> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "strongroom")
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("response body: {e}"))?
            .to_bytes()
            .to_vec();
        Ok(Reply { status, body })
    }
}
