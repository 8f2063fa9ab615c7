//! Account backend options: `GET /api/v1/{ws}/backend_options/`, and the write over the
//! `/ws/api/v1/{ws}/cluster-info/` WebSocket (`update_options`), as Coiled's client does it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};

use super::client::{CONNECT_TIMEOUT, seg};
#[cfg(doc)]
use super::requests::BackendOptionsData;
use super::requests::UpdateOptions;
use super::retry::{self, Call, FailedAttempt, Op};
use super::{API_CLIENT_VERSION, ApiError, BackendOptionsRead, Client, connect, error_from_body};

impl Client {
    /// `GET /api/v1/{ws}/backend_options/`.
    pub async fn get_backend_options(
        &self,
        op: &Op,
        workspace: &str,
    ) -> Result<BackendOptionsRead, ApiError> {
        self.get_json(op, &format!("/api/v1/{}/backend_options/", seg(workspace)), &[]).await
    }

    /// Writes account backend options over the `cluster-info` WebSocket (`update_options`), as
    /// Coiled's client does: read the greeting, send the options, follow progress until `FINISHED`
    /// or close. Returns the progress messages. Connection failures before the options are sent are
    /// retried. `data` is a [`BackendOptionsData`] when the provider writes; tests of the server
    /// may send other shapes.
    pub async fn set_backend_options<D: serde::Serialize + Sync>(
        &self,
        op: &Op,
        workspace: &str,
        data: &D,
    ) -> Result<Vec<String>, ApiError> {
        retry::run(op, &self.config.retry, "update_options", |_| {
            self.set_backend_options_once(op, workspace, data)
        })
        .await
    }

    /// Connects the WebSocket: TCP (through the proxy the environment names, if any), then TLS with
    /// the same trust as the HTTP client, then the upgrade carrying the auth headers.
    async fn open_websocket(
        &self,
        op: &Op,
        ws_url: &str,
        workspace: &str,
    ) -> Result<WsStream, FailedAttempt> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let wse = |m: String| ApiError::WebSocket { url: ws_url.to_string(), message: m };
        let mut request =
            ws_url.into_client_request().map_err(|e| before_send(wse(e.to_string())))?;
        let headers = request.headers_mut();
        let hv =
            |s: &str| http::HeaderValue::from_str(s).map_err(|e| before_send(wse(e.to_string())));
        headers.insert("Authorization", hv(&self.auth_header())?);
        headers.insert("Client-Version", hv(API_CLIENT_VERSION)?);
        headers.insert("coiled-session-id", hv(&self.session_id)?);
        let url = url::Url::parse(ws_url).map_err(|e| before_send(wse(e.to_string())))?;
        let proxy = connect::proxy_for(&url, |k| std::env::var(k).ok())
            .map_err(|message| before_send(ApiError::Config { message }))?;
        let timeout = CONNECT_TIMEOUT.min(op.remaining()).max(Duration::from_millis(100));
        let stream = tokio::select! {
            r = connect::open(&url, proxy.as_ref(), timeout) => r.map_err(|reason| FailedAttempt {
                error: wse(reason.clone()),
                retry_after: None,
                unreachable: Some((ws_url.to_string(), reason)),
                retryable: true,
            })?,
            () = op.stop.cancelled() => return Err(before_send(ApiError::Cancelled)),
        };
        stream.set_nodelay(true).ok();
        let connector = tokio_tungstenite::Connector::Rustls(self.ws_tls.clone());
        let handshake = tokio::time::timeout(
            Call::Idempotent.timeout().min(op.remaining()),
            tokio_tungstenite::client_async_tls_with_config(request, stream, None, Some(connector)),
        );
        let result = tokio::select! {
            r = handshake => r,
            () = op.stop.cancelled() => return Err(before_send(ApiError::Cancelled)),
        };
        match result {
            Err(_) => Err(before_send(wse("no answer to the WebSocket upgrade".into()))),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                self.mark_answered();
                let status = resp.status().as_u16();
                let body = resp
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err(before_send(match status {
                    403 => ApiError::Forbidden {
                        message: format!(
                            "cannot edit backend options in workspace {workspace:?}; check that \
                                the token's user is an admin of it"
                        ),
                    },
                    404 => ApiError::NotFound { message: format!("workspace {workspace:?}") },
                    s => error_from_body(s, &body, ""),
                }))
            }
            // Not retried: a refused certificate does not fix itself.
            Ok(Err(e)) if super::client::is_certificate_rejection(&e) => {
                Err(FailedAttempt::fatal(ApiError::Certificate {
                    url: ws_url.to_string(),
                    message: e.to_string(),
                }))
            }
            Ok(Err(e)) => Err(before_send(wse(e.to_string()))),
            Ok(Ok((socket, _))) => {
                self.mark_answered();
                Ok(socket)
            }
        }
    }

    async fn set_backend_options_once<D: serde::Serialize + Sync>(
        &self,
        op: &Op,
        workspace: &str,
        data: &D,
    ) -> Result<Vec<String>, FailedAttempt> {
        use tokio_tungstenite::tungstenite::Message;
        let ws_url = format!(
            "{}/ws/api/v1/{}/cluster-info/",
            self.config.server.replacen("http", "ws", 1),
            seg(workspace)
        );
        let wse = |m: String| ApiError::WebSocket { url: ws_url.clone(), message: m };
        let mut socket = self.open_websocket(op, &ws_url, workspace).await?;
        // The server greets first; Coiled's client discards the greeting, but a close instead of a
        // greeting is the server refusing the connection.
        match next_message(op, &mut socket).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(FailedAttempt::fatal(refused_by_close(code, workspace, &ws_url)));
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Some(message) = error_message(&text) {
                    return Err(FailedAttempt::fatal(ApiError::Refused { message }));
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(before_send(wse(e.to_string()))),
            Ok(None) => return Err(before_send(wse("closed before greeting".into()))),
            Err(e) => return Err(before_send(e)),
        }
        let message = UpdateOptions {
            kind: "update_options",
            logging_context: Default::default(),
            data,
            session_id: &self.session_id,
            request_id: format!("{:08x}", rand::random::<u32>()),
        };
        let message = serde_json::to_string(&message)
            .map_err(|e| FailedAttempt::fatal(wse(e.to_string())))?;
        socket.send(Message::text(message)).await.map_err(|e| before_send(wse(e.to_string())))?;
        follow_progress(op, &mut socket, workspace, &ws_url).await
    }
}

/// Reads the server's answers to `update_options` until `FINISHED` or close: the progress messages,
/// or the error the server flagged (on any message, whatever its type, as Coiled's client reads
/// them).
async fn follow_progress(
    op: &Op,
    socket: &mut WsStream,
    workspace: &str,
    ws_url: &str,
) -> Result<Vec<String>, FailedAttempt> {
    use tokio_tungstenite::tungstenite::Message;
    let wse = |m: String| ApiError::WebSocket { url: ws_url.to_string(), message: m };
    let mut progress = Vec::new();
    let mut last_error: Option<String> = None;
    loop {
        let msg = match next_message(op, socket).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(e))) => return Err(FailedAttempt::fatal(wse(e.to_string()))),
            Ok(None) => break,
            Err(e) => return Err(FailedAttempt::fatal(e)),
        };
        match msg {
            Message::Text(text) => {
                // As Coiled's client: an error flag counts on any message, whatever its type.
                if let Some(message) = error_message(&text) {
                    last_error = Some(message);
                    continue;
                }
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if v.get("type").and_then(|t| t.as_str()) != Some("update_options") {
                    continue;
                }
                match v.get("message").and_then(|m| m.as_str()).unwrap_or_default() {
                    "FINISHED" => {
                        let _ = socket.close(None).await;
                        break;
                    }
                    "CONFIGURING_BACKEND" | "NOT_CONFIGURING_BACKEND" => {}
                    other => progress.push(other.to_string()),
                }
            }
            Message::Close(frame) => {
                let error = match frame.map(|f| u16::from(f.code)) {
                    Some(code @ (4401 | 4403)) => refused_by_close(code, workspace, ws_url),
                    Some(code @ 1001..3000) => wse(format!("connection closed with code {code}")),
                    _ => break,
                };
                return Err(FailedAttempt::fatal(error));
            }
            _ => {}
        }
    }
    match last_error {
        Some(message) => Err(FailedAttempt::fatal(ApiError::Refused { message })),
        None => Ok(progress),
    }
}

/// A failure before the options were sent: retried when the server or the connection may recover.
fn before_send(error: ApiError) -> FailedAttempt {
    let retryable = error.retryable(true) || matches!(error, ApiError::WebSocket { .. });
    FailedAttempt { error, retry_after: None, unreachable: None, retryable }
}

/// The next WebSocket message, bounded by the operation's deadline and stop signal.
async fn next_message(op: &Op, socket: &mut WsStream) -> Result<Option<WsMessage>, ApiError> {
    tokio::select! {
        r = tokio::time::timeout(op.remaining(), socket.next()) => r.map_err(|_| {
            let message = "no answer before the operation's timeout".into();
            ApiError::WebSocket { url: String::new(), message }
        }),
        () = op.stop.cancelled() => Err(ApiError::Cancelled),
    }
}

type WsMessage =
    Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>;

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The error a WebSocket message carries, if it says it is one (`is_error` or `raise`, whatever its
/// type).
fn error_message(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let is_error = v.get("is_error").is_some_and(truthy) || v.get("raise").is_some_and(truthy);
    is_error.then(|| match v.get("message") {
        Some(serde_json::Value::String(m)) if !m.is_empty() => m.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => "the server reported an error without a message".to_string(),
    })
}

/// The error for a close frame that refuses the connection.
fn refused_by_close(code: u16, workspace: &str, url: &str) -> ApiError {
    match code {
        4401 | 4403 => ApiError::Forbidden {
            message: format!(
                "the server closed the backend options connection with code {code}: the token is \
                    not allowed to edit workspace {workspace:?} (check the token, and that its \
                    user is an admin of the workspace)"
            ),
        },
        _ => ApiError::WebSocket {
            url: url.to_string(),
            message: format!("the server closed the connection (code {code}) instead of greeting"),
        },
    }
}

fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Null => false,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    }
}
