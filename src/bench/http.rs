//! The load generator's side of HTTP/1.1: one request at a time on a kept-alive Unix-socket
//! connection, written from one buffer and read into a reused one, in the client's own task.
//! The bench's clients share the machine with the service they measure, so they should cost it
//! as little as they can. With [`crate::client::Client`] (hyper, a connection task beside each
//! caller, on a multi-threaded runtime) P-256 bench runs measured 26 to 29 µs of client CPU per
//! certificate; with this connection on one thread, 21 to 24.

use std::io::Write as _;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// One connection to the service.
pub(super) struct Connection {
    stream: UnixStream,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Connection {
    /// Connects to the socket.
    pub(super) async fn connect(socket: &Path) -> Result<Connection, String> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
        Ok(Connection {
            stream,
            request: Vec::with_capacity(1024),
            response: Vec::with_capacity(8192),
        })
    }

    /// POSTs a JSON body to `path` and returns the response's status; the response body is
    /// read in full (the connection is kept alive) and dropped.
    pub(super) async fn post(&mut self, path: &str, body: &[u8]) -> Result<u16, String> {
        self.request.clear();
        write!(
            self.request,
            "POST {path} HTTP/1.1\r\nhost: strongroom\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n\r\n",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        self.request.extend_from_slice(body);
        self.stream
            .write_all(&self.request)
            .await
            .map_err(|e| format!("sending the request: {e}"))?;
        self.response.clear();
        loop {
            if let Some(head) = parse_head(&self.response)? {
                let total = head.len + head.content_length;
                while self.response.len() < total {
                    self.read_more().await?;
                }
                if self.response.len() > total {
                    return Err("the service sent more than one response".to_string());
                }
                return Ok(head.status);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> Result<(), String> {
        let n = self
            .stream
            .read_buf(&mut self.response)
            .await
            .map_err(|e| format!("reading the response: {e}"))?;
        if n == 0 {
            return Err("the service closed the connection mid-response".to_string());
        }
        Ok(())
    }
}

/// A response's status line and headers, once they have arrived in full.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    /// Octets of the status line and headers, with the blank line that ends them.
    len: usize,
    content_length: usize,
}

/// Parses the head of a response (RFC 9112 sections 4 and 6.3) from what has arrived so far:
/// `None` while it is incomplete. A body must be framed by Content-Length (the service's are);
/// chunked or unframed bodies are errors here rather than read wrongly.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad content-length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(format!("unexpected transfer-encoding {value:?}"));
        }
    }
    Ok(Some(Head {
        status,
        len: end + 4,
        content_length: content_length.ok_or("the response has no content-length")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &[u8] =
        b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";

    #[test]
    fn a_head_parses_once_it_has_arrived_in_full() {
        let end = RESPONSE.len() - 7;
        for cut in 0..end {
            assert_eq!(parse_head(&RESPONSE[..cut]), Ok(None), "cut at {cut}");
        }
        let head = Head {
            status: 201,
            len: end,
            content_length: 7,
        };
        assert_eq!(parse_head(&RESPONSE[..end]), Ok(Some(head)));
    }

    #[test]
    fn unframed_or_malformed_responses_are_errors() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(
            parse_head(chunked)
                .unwrap_err()
                .contains("transfer-encoding")
        );
        let unframed = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n";
        assert!(parse_head(unframed).unwrap_err().contains("content-length"));
        let garbled = b"HTTP/1.0 2x0 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(parse_head(garbled).unwrap_err().contains("status line"));
    }
}
