//! Fakes of the services weft notifies, served beside the Autotask API: Teams and Slack
//! incoming webhooks (`POST /sinks/{teams|slack}/{channel}`), the fake OpenAI API
//! (`POST /openai/v1/chat/completions`, see [`crate::openai`]), and a standalone SMTP sink
//! ([`SmtpSink`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::openai::OpenAiFake;

/// One message a Teams or Slack webhook sink received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SinkMessage {
    /// `teams` or `slack`.
    pub kind: String,
    /// The `{channel}` of the URL.
    pub channel: String,
    /// The JSON body.
    pub body: Value,
}

/// State of the non-Autotask fakes, shared by a simulator's clones.
#[derive(Default)]
pub struct Fakes {
    /// The fake OpenAI-compatible endpoint.
    pub openai: OpenAiFake,
    /// Messages received by the notification sinks (Slack, Teams, SMTP …), oldest first.
    pub messages: Mutex<Vec<SinkMessage>>,
}

/// The routes of the fakes.
pub fn router(fakes: Arc<Fakes>) -> axum::Router {
    axum::Router::new()
        .route("/openai/v1/chat/completions", post(openai_chat))
        .route("/sinks/{kind}/{channel}", post(sink))
        .with_state(fakes)
}

async fn openai_chat(State(f): State<Arc<Fakes>>, headers: HeaderMap, body: Bytes) -> Response {
    f.openai.handle(&headers, &body)
}

async fn sink(
    State(f): State<Arc<Fakes>>,
    Path((kind, channel)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let kind = kind.to_ascii_lowercase();
    if kind != "teams" && kind != "slack" {
        return (StatusCode::NOT_FOUND, "no such sink (teams or slack)").into_response();
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return if kind == "slack" {
            (StatusCode::BAD_REQUEST, "invalid_payload").into_response()
        } else {
            (
                StatusCode::BAD_REQUEST,
                "Bad payload received by generic incoming webhook.",
            )
                .into_response()
        };
    };
    if kind == "slack" {
        let has_text = json
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.trim().is_empty());
        let has_blocks = json
            .get("blocks")
            .and_then(Value::as_array)
            .is_some_and(|b| !b.is_empty());
        if !has_text && !has_blocks {
            return (StatusCode::BAD_REQUEST, "no_text").into_response();
        }
    } else {
        let ok = json.get("text").is_some()
            || json.get("attachments").and_then(Value::as_array).is_some();
        if !ok {
            return (
                StatusCode::BAD_REQUEST,
                "Text is required when there are no attachments.",
            )
                .into_response();
        }
    }
    f.messages.lock().unwrap().push(SinkMessage {
        kind: kind.clone(),
        channel,
        body: json,
    });
    // The real services answer `1` (Teams connectors) and `ok` (Slack) as plain text.
    if kind == "teams" {
        (StatusCode::OK, "1").into_response()
    } else {
        (StatusCode::OK, "ok").into_response()
    }
}

// ---------------------------------------------------------------------------------------------
// SMTP

/// One message an [`SmtpSink`] accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpMessage {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`).
    pub to: Vec<String>,
    /// The message (headers and body), dot-stuffing undone, CRLF line ends.
    pub data: String,
    /// The user name of `AUTH`, when the client authenticated.
    pub auth_user: Option<String>,
}

/// A minimal SMTP server on `127.0.0.1` that records what it is sent (no TLS: it answers
/// `STARTTLS` with 454). Stops when dropped.
pub struct SmtpSink {
    /// Where it listens.
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<SmtpMessage>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct SmtpConfig {
    credentials: Option<(String, String)>,
    messages: Arc<Mutex<Vec<SmtpMessage>>>,
}

impl SmtpSink {
    /// Listens on `127.0.0.1:0`, accepting any message without authentication.
    pub async fn start() -> std::io::Result<SmtpSink> {
        Self::start_with(None).await
    }

    /// Listens on `127.0.0.1:0`, requiring `AUTH PLAIN` or `AUTH LOGIN` with these
    /// credentials before `MAIL FROM` (535 for wrong ones).
    pub async fn start_with_auth(user: &str, password: &str) -> std::io::Result<SmtpSink> {
        Self::start_with(Some((user.to_string(), password.to_string()))).await
    }

    async fn start_with(credentials: Option<(String, String)>) -> std::io::Result<SmtpSink> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let config = SmtpConfig {
            credentials,
            messages: messages.clone(),
        };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    let _ = session(stream, config).await;
                });
            }
        });
        Ok(SmtpSink {
            addr,
            messages,
            task,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<SmtpMessage> {
        self.messages.lock().unwrap().clone()
    }
}

/// The address inside `FROM:<a@b>` / `TO:<a@b> SIZE=…`.
fn path_arg(rest: &str) -> String {
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(a), Some(b)) if b > a => rest[a + 1..b].to_string(),
        _ => rest.split_whitespace().next().unwrap_or("").to_string(),
    }
}

fn decode_b64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

async fn session(stream: TcpStream, config: SmtpConfig) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 weft-sim ESMTP ready\r\n").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut auth_user: Option<String> = None;
    let mut line = String::new();

    async fn read_line(
        reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
        line: &mut String,
    ) -> std::io::Result<bool> {
        line.clear();
        Ok(reader.read_line(line).await? > 0)
    }

    loop {
        if !read_line(&mut reader, &mut line).await? {
            return Ok(());
        }
        let cmd_line = line.trim_end_matches(['\r', '\n']).to_string();
        let upper = cmd_line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or("").to_string();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-weft-sim\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 10485760\r\n".into(),
            "HELO" => "250 weft-sim\r\n".into(),
            "STARTTLS" => "454 4.7.0 TLS not available\r\n".into(),
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 OK\r\n".into()
            }
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            "AUTH" => {
                let parts: Vec<&str> = cmd_line.split_whitespace().collect();
                let mech = parts.get(1).map(|m| m.to_ascii_uppercase()).unwrap_or_default();
                let creds: Option<(String, String)> = match mech.as_str() {
                    "PLAIN" => {
                        let payload = match parts.get(2) {
                            Some(p) => p.to_string(),
                            None => {
                                write.write_all(b"334 \r\n").await?;
                                if !read_line(&mut reader, &mut line).await? {
                                    return Ok(());
                                }
                                line.trim().to_string()
                            }
                        };
                        decode_b64(&payload).and_then(|s| {
                            let mut it = s.split('\0');
                            let _authzid = it.next()?;
                            Some((it.next()?.to_string(), it.next()?.to_string()))
                        })
                    }
                    "LOGIN" => {
                        let user = match parts.get(2) {
                            Some(u) => decode_b64(u),
                            None => {
                                write.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                                if !read_line(&mut reader, &mut line).await? {
                                    return Ok(());
                                }
                                decode_b64(&line)
                            }
                        };
                        write.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
                        if !read_line(&mut reader, &mut line).await? {
                            return Ok(());
                        }
                        user.zip(decode_b64(&line))
                    }
                    _ => None,
                };
                match (creds, &config.credentials) {
                    (None, _) => "535 5.7.8 Authentication credentials invalid\r\n".into(),
                    (Some((u, _)), None) => {
                        auth_user = Some(u);
                        "235 2.7.0 Authentication successful\r\n".into()
                    }
                    (Some((u, p)), Some((eu, ep))) if &u == eu && &p == ep => {
                        auth_user = Some(u);
                        "235 2.7.0 Authentication successful\r\n".into()
                    }
                    (Some(_), Some(_)) => {
                        "535 5.7.8 Authentication credentials invalid\r\n".into()
                    }
                }
            }
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                if config.credentials.is_some() && auth_user.is_none() {
                    "530 5.7.0 Authentication required\r\n".into()
                } else {
                    from = Some(path_arg(&cmd_line[10..]));
                    to.clear();
                    "250 2.1.0 OK\r\n".into()
                }
            }
            "RCPT" if upper.starts_with("RCPT TO:") => {
                if from.is_none() {
                    "503 5.5.1 MAIL first\r\n".into()
                } else {
                    to.push(path_arg(&cmd_line[8..]));
                    "250 2.1.5 OK\r\n".into()
                }
            }
            "DATA" => {
                if from.is_none() || to.is_empty() {
                    "503 5.5.1 RCPT first\r\n".into()
                } else {
                    write
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let mut data = String::new();
                    loop {
                        if !read_line(&mut reader, &mut line).await? {
                            return Ok(());
                        }
                        let l = line.trim_end_matches(['\r', '\n']);
                        if l == "." {
                            break;
                        }
                        let l = l.strip_prefix('.').unwrap_or(l);
                        data.push_str(l);
                        data.push_str("\r\n");
                    }
                    config.messages.lock().unwrap().push(SmtpMessage {
                        from: from.take().unwrap_or_default(),
                        to: std::mem::take(&mut to),
                        data,
                        auth_user: auth_user.clone(),
                    });
                    "250 2.0.0 OK queued\r\n".into()
                }
            }
            "" => "500 5.5.2 Syntax error\r\n".into(),
            _ => "502 5.5.2 Command not recognized\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn smtp_sink_records_a_message() {
        let sink = SmtpSink::start_with_auth("u", "p").await.unwrap();
        let stream = TcpStream::connect(sink.addr).await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        let mut line = String::new();
        let mut expect = async |send: &str, code: &str| {
            if !send.is_empty() {
                w.write_all(send.as_bytes()).await.unwrap();
            }
            loop {
                line.clear();
                r.read_line(&mut line).await.unwrap();
                if line.as_bytes().get(3) != Some(&b'-') {
                    break;
                }
            }
            assert!(line.starts_with(code), "{send:?} → {line:?}");
        };
        expect("", "220").await;
        expect("EHLO me\r\n", "250").await;
        expect("MAIL FROM:<a@x>\r\n", "530").await;
        let bad = base64::engine::general_purpose::STANDARD.encode("\0u\0wrong");
        expect(&format!("AUTH PLAIN {bad}\r\n"), "535").await;
        let good = base64::engine::general_purpose::STANDARD.encode("\0u\0p");
        expect(&format!("AUTH PLAIN {good}\r\n"), "235").await;
        expect("MAIL FROM:<a@x> SIZE=10\r\n", "250").await;
        expect("RCPT TO:<b@y>\r\n", "250").await;
        expect("DATA\r\n", "354").await;
        expect("Subject: hi\r\n\r\n..dot\r\nline\r\n.\r\n", "250").await;
        expect("QUIT\r\n", "221").await;
        let m = sink.messages();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].from, "a@x");
        assert_eq!(m[0].to, vec!["b@y"]);
        assert_eq!(m[0].data, "Subject: hi\r\n\r\n.dot\r\nline\r\n");
        assert_eq!(m[0].auth_user.as_deref(), Some("u"));
    }
}
