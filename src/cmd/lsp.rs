//! `weft lsp`: the Language Server Protocol over stdio, for editors. This module moves
//! messages (framing, dispatch, debouncing); what the answers say is decided in `crate::lsp`.

use std::collections::HashMap;
use std::io::{BufRead, Read as _, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, Request as _,
};
use lsp_types::{
    CompletionOptions, CompletionResponse, DocumentSymbolResponse, GotoDefinitionResponse,
    HoverProviderCapability, Location, OneOf, PositionEncodingKind, PublishDiagnosticsParams,
    ServerCapabilities, TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};

use crate::lsp::definition::{Target, find_workflow};
use crate::lsp::text::Lines;
use crate::lsp::{Catalog, Document, completion, definition, diagnostics, hover, symbols};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Talk over stdin/stdout (the only transport; accepted because editors' clients pass it).
    #[arg(long)]
    stdio: bool,
}

/// Diagnostics wait this long after the last change: validating on every keystroke would
/// flash errors for half-typed words.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// A message larger than this is read and dropped rather than held in memory.
const MAX_MESSAGE: usize = 64 << 20;

/// The method of the request the reader makes of a message that had an id but was not a
/// valid request, so the loop answers the client instead of leaving it waiting.
const INVALID: &str = "$/weft/invalidRequest";

/// Serves until `exit`. The stdio threads are ours rather than `Connection::stdio`'s: its
/// reader gives up on the first malformed message, ending the session; ours drops that
/// message and reads on.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    let (server, client) = Connection::memory();
    let Connection {
        sender: to_server,
        receiver: from_server,
    } = client;
    std::thread::Builder::new()
        .name("lsp-reader".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut input = stdin.lock();
            loop {
                match read_message(&mut input) {
                    Ok(Some(body)) => {
                        let Some(msg) = decode(&body) else { continue };
                        if to_server.send(msg).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("weft lsp: cannot read stdin: {e}");
                        break;
                    }
                }
            }
        })
        .map_err(|e| miette::miette!("cannot start the reader thread: {e}"))?;
    let writer = std::thread::Builder::new()
        .name("lsp-writer".into())
        .spawn(move || {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for msg in from_server {
                if let Err(e) = msg.write(&mut out).and_then(|()| out.flush()) {
                    tracing::warn!("weft lsp: cannot write to stdout: {e}");
                    break;
                }
            }
        })
        .map_err(|e| miette::miette!("cannot start the writer thread: {e}"))?;
    let catalog = Catalog::new(weft_actions::registry());
    let code = serve(&server, &catalog);
    // Everything sent is written before the process ends: the writer stops once the last
    // sender is gone.
    drop(server);
    let _ = writer.join();
    Ok(code)
}

/// Reads one `Content-Length`-framed message body; `None` at the end of input. Headers it
/// does not know and stray blank lines are skipped, so a client's garbage costs one message,
/// not the connection.
fn read_message(input: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = None;
    let mut line = Vec::new();
    loop {
        line.clear();
        // A header line is short; a client sending endless bytes without a line break
        // must not fill memory.
        if input.by_ref().take(8192).read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if length.is_some() {
                break;
            }
            continue;
        }
        if let Some((name, value)) = text.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.unwrap_or(0);
    if length > MAX_MESSAGE {
        std::io::copy(&mut input.take(length as u64), &mut std::io::sink())?;
        tracing::warn!("weft lsp: dropped a message of {length} bytes");
        return Ok(Some(Vec::new()));
    }
    let mut body = vec![0; length];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// The message in a body, or `None` (logged) when it is not one; a body that names a request
/// id becomes an [`INVALID`] request so that it still gets an answer.
fn decode(body: &[u8]) -> Option<Message> {
    match serde_json::from_slice::<Message>(body) {
        Ok(msg) => Some(msg),
        Err(e) => {
            tracing::warn!("weft lsp: ignoring a malformed message: {e}");
            let value: serde_json::Value = serde_json::from_slice(body).ok()?;
            let id = value.get("id")?.clone();
            serde_json::from_value::<RequestId>(id)
                .ok()
                .map(|id| Message::Request(Request::new(id, INVALID.into(), ())))
        }
    }
}

/// The open documents and the diagnostics due.
struct State<'c> {
    catalog: &'c Catalog,
    docs: HashMap<Uri, (Document, i32)>,
    /// When each changed document's diagnostics are due.
    due: HashMap<Uri, Instant>,
    shutting_down: bool,
}

/// Runs the protocol until `exit`: 0 after a `shutdown` request, 1 otherwise (as the
/// protocol asks), also 1 when the client goes away.
fn serve(conn: &Connection, catalog: &Catalog) -> ExitCode {
    if !initialize(conn) {
        return ExitCode::from(1);
    }
    let mut state = State {
        catalog,
        docs: HashMap::new(),
        due: HashMap::new(),
        shutting_down: false,
    };
    loop {
        let next = state.due.values().min().copied();
        let received = match next {
            Some(at) => match conn
                .receiver
                .recv_timeout(at.saturating_duration_since(Instant::now()))
            {
                Ok(msg) => Some(msg),
                Err(e) if e.is_timeout() => None,
                Err(_) => return ExitCode::from(1),
            },
            None => match conn.receiver.recv() {
                Ok(msg) => Some(msg),
                Err(_) => return ExitCode::from(1),
            },
        };
        let Some(msg) = received else {
            let now = Instant::now();
            let ready: Vec<Uri> = state
                .due
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(uri, _)| uri.clone())
                .collect();
            for uri in ready {
                state.due.remove(&uri);
                state.publish(conn, &uri);
            }
            continue;
        };
        match msg {
            Message::Request(req) => {
                let id = req.id.clone();
                let response = if state.shutting_down {
                    Response::new_err(
                        id,
                        ErrorCode::InvalidRequest as i32,
                        "the server is shutting down".into(),
                    )
                } else if req.method == "shutdown" {
                    state.shutting_down = true;
                    Response::new_ok(id, ())
                } else {
                    catch_unwind(AssertUnwindSafe(|| state.request(req))).unwrap_or_else(|_| {
                        Response::new_err(
                            id,
                            ErrorCode::InternalError as i32,
                            "weft lsp failed on this request (see its log)".into(),
                        )
                    })
                };
                send(conn, response.into());
            }
            Message::Notification(n) if n.method == "exit" => {
                return if state.shutting_down {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                };
            }
            Message::Notification(n) => {
                let method = n.method.clone();
                if catch_unwind(AssertUnwindSafe(|| state.notification(conn, n))).is_err() {
                    tracing::warn!("weft lsp: failed on a {method} notification");
                }
            }
            Message::Response(_) => {}
        }
    }
}

/// The `initialize` handshake; anything but `initialize` before it is answered with an error
/// (requests) or ignored (notifications). `false` if the client left or said `exit`.
fn initialize(conn: &Connection) -> bool {
    loop {
        match conn.receiver.recv() {
            Ok(Message::Request(req)) if req.method == "initialize" => {
                let result = serde_json::json!({
                    "capabilities": capabilities(),
                    "serverInfo": { "name": "weft", "version": crate::VERSION },
                });
                send(conn, Response::new_ok(req.id, result).into());
                return true;
            }
            Ok(Message::Request(req)) => send(
                conn,
                Response::new_err(
                    req.id,
                    ErrorCode::ServerNotInitialized as i32,
                    "initialize first".into(),
                )
                .into(),
            ),
            Ok(Message::Notification(n)) if n.method == "exit" => return false,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into(), "|".into()]),
            ..CompletionOptions::default()
        }),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

fn send(conn: &Connection, msg: Message) {
    // The writer only stops when stdout is gone; then there is no one to tell.
    let _ = conn.sender.send(msg);
}

/// Why a request gets an error response.
struct Failure {
    code: ErrorCode,
    message: String,
}

/// A request's parameters.
fn params<P: serde::de::DeserializeOwned>(req: &Request) -> Result<P, Failure> {
    serde_json::from_value(req.params.clone()).map_err(|e| Failure {
        code: ErrorCode::InvalidParams,
        message: format!("invalid {} parameters: {e}", req.method),
    })
}

impl State<'_> {
    fn request(&mut self, req: Request) -> Response {
        match self.answer(&req) {
            Ok(value) => Response::new_ok(req.id, value),
            Err(Failure { code, message }) => Response::new_err(req.id, code as i32, message),
        }
    }

    fn answer(&self, req: &Request) -> Result<serde_json::Value, Failure> {
        match req.method.as_str() {
            Completion::METHOD => self.at::<lsp_types::CompletionParams, _>(
                req,
                |p| &p.text_document_position,
                |doc, offset, uri| {
                    let items = if doc.kind == crate::lsp::FileKind::Test {
                        completion::complete_test(
                            doc,
                            self.catalog,
                            offset,
                            path_of(uri).as_deref(),
                        )
                    } else {
                        completion::complete(doc, self.catalog, offset)
                    };
                    Some(CompletionResponse::Array(items))
                },
            ),
            HoverRequest::METHOD => self.at::<lsp_types::HoverParams, _>(
                req,
                |p| &p.text_document_position_params,
                |doc, offset, _| hover::hover(doc, self.catalog, offset),
            ),
            GotoDefinition::METHOD => self.at::<lsp_types::GotoDefinitionParams, _>(
                req,
                |p| &p.text_document_position_params,
                goto,
            ),
            DocumentSymbolRequest::METHOD => {
                let p: lsp_types::DocumentSymbolParams = params(req)?;
                let found = self
                    .docs
                    .get(&p.text_document.uri)
                    .map(|(doc, _)| DocumentSymbolResponse::Nested(symbols::symbols(doc)));
                Ok(serde_json::to_value(found).unwrap_or_default())
            }
            INVALID => Err(Failure {
                code: ErrorCode::InvalidRequest,
                message: "not a valid request".into(),
            }),
            _ => Err(Failure {
                code: ErrorCode::MethodNotFound,
                message: format!("weft lsp does not handle {}", req.method),
            }),
        }
    }

    /// Answers a request about a position in an open document (`null` for one not open).
    fn at<P, R>(
        &self,
        req: &Request,
        position: impl Fn(&P) -> &lsp_types::TextDocumentPositionParams,
        answer: impl Fn(&Document, usize, &Uri) -> Option<R>,
    ) -> Result<serde_json::Value, Failure>
    where
        P: serde::de::DeserializeOwned,
        R: serde::Serialize,
    {
        let p: P = params(req)?;
        let pos = position(&p);
        let uri = &pos.text_document.uri;
        let result = self.docs.get(uri).and_then(|(doc, _)| {
            let offset = Lines::new(&doc.text).offset(pos.position);
            answer(doc, offset, uri)
        });
        Ok(serde_json::to_value(result).unwrap_or_default())
    }

    fn notification(&mut self, conn: &Connection, n: Notification) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Some(p) = extract::<lsp_types::DidOpenTextDocumentParams>(n) else {
                    return;
                };
                let doc = p.text_document;
                let path = path_of(&doc.uri);
                self.docs.insert(
                    doc.uri.clone(),
                    (Document::new(path.as_deref(), doc.text), doc.version),
                );
                self.publish(conn, &doc.uri);
            }
            DidChangeTextDocument::METHOD => {
                let Some(p) = extract::<lsp_types::DidChangeTextDocumentParams>(n) else {
                    return;
                };
                let uri = p.text_document.uri;
                let path = path_of(&uri);
                // A change to a document never opened here (a client that only tells us
                // once a file looks like weft's) opens it, when the change is the whole text.
                if !self.docs.contains_key(&uri) {
                    if p.content_changes.iter().any(|c| c.range.is_none()) {
                        self.docs.insert(
                            uri.clone(),
                            (Document::new(path.as_deref(), String::new()), 0),
                        );
                    } else {
                        tracing::warn!("weft lsp: edit to {} which is not open", uri.as_str());
                        return;
                    }
                }
                let Some((doc, version)) = self.docs.get_mut(&uri) else {
                    return;
                };
                let mut text = std::mem::take(&mut doc.text);
                for change in p.content_changes {
                    match change.range {
                        // Full sync is what we asked for, but a client may still send edits.
                        Some(range) => {
                            let lines = Lines::new(&text);
                            let start = lines.offset(range.start);
                            let end = lines.offset(range.end).max(start);
                            text.replace_range(start..end, &change.text);
                        }
                        None => text = change.text,
                    }
                }
                doc.update(path.as_deref(), text);
                *version = p.text_document.version;
                self.due.insert(uri, Instant::now() + DEBOUNCE);
            }
            DidCloseTextDocument::METHOD => {
                let Some(p) = extract::<lsp_types::DidCloseTextDocumentParams>(n) else {
                    return;
                };
                let uri = p.text_document.uri;
                self.docs.remove(&uri);
                self.due.remove(&uri);
                publish(conn, uri, Vec::new(), None);
            }
            _ => {}
        }
    }

    /// Sends a document's diagnostics (an empty list clears the editor's).
    fn publish(&self, conn: &Connection, uri: &Uri) {
        if let Some((doc, version)) = self.docs.get(uri) {
            let found = diagnostics::diagnostics(doc, self.catalog, uri);
            publish(conn, uri.clone(), found, Some(*version));
        }
    }
}

fn publish(
    conn: &Connection,
    uri: Uri,
    diagnostics: Vec<lsp_types::Diagnostic>,
    version: Option<i32>,
) {
    let params = PublishDiagnosticsParams {
        uri,
        diagnostics,
        version,
    };
    send(
        conn,
        Notification::new(PublishDiagnostics::METHOD.into(), params).into(),
    );
}

fn extract<P: serde::de::DeserializeOwned>(n: Notification) -> Option<P> {
    let method = n.method.clone();
    match serde_json::from_value(n.params) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("weft lsp: invalid {method} parameters: {e}");
            None
        }
    }
}

/// Where the definitions of what is at `offset` are, as locations.
fn goto(doc: &Document, offset: usize, uri: &Uri) -> Option<GotoDefinitionResponse> {
    let lines = Lines::new(&doc.text);
    let dir = path_of(uri).and_then(|p| p.parent().map(PathBuf::from));
    let locations: Vec<Location> = definition::definition(doc, offset)
        .into_iter()
        .filter_map(|target| match target {
            Target::Here(span) => Some(Location::new(uri.clone(), lines.range(span))),
            Target::Workflow(name) => {
                let (path, span) = find_workflow(dir.as_deref()?, &name)?;
                let text = std::fs::read_to_string(&path).ok()?;
                Some(Location::new(uri_of(&path)?, Lines::new(&text).range(span)))
            }
        })
        .collect();
    match locations.len() {
        0 => None,
        1 => locations
            .into_iter()
            .next()
            .map(GotoDefinitionResponse::Scalar),
        _ => Some(GotoDefinitionResponse::Array(locations)),
    }
}

fn path_of(uri: &Uri) -> Option<PathBuf> {
    url::Url::parse(uri.as_str()).ok()?.to_file_path().ok()
}

fn uri_of(path: &std::path::Path) -> Option<Uri> {
    let url = url::Url::from_file_path(path).ok()?;
    Uri::from_str(url.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_survives_garbage() {
        let body = r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#;
        let stream = format!(
            "\r\nX-Junk: 1\r\nContent-Length: {}\r\n\r\n{body}Content-Length: 3\r\n\r\n{{]}}",
            body.len()
        );
        let mut input = std::io::BufReader::new(stream.as_bytes());
        let first = read_message(&mut input).unwrap().unwrap();
        assert!(
            matches!(decode(&first), Some(Message::Notification(n)) if n.method == "initialized")
        );
        let second = read_message(&mut input).unwrap().unwrap();
        assert!(decode(&second).is_none());
        assert!(read_message(&mut input).unwrap().is_none());
        assert!(decode(&[0xff, 0xfe]).is_none());
        let no_method = br#"{"jsonrpc":"2.0","id":7,"params":{}}"#;
        assert!(matches!(decode(no_method), Some(Message::Request(r)) if r.method == INVALID));
    }

    #[test]
    fn file_uris_and_paths() {
        let uri = Uri::from_str("file:///tmp/a%20b/x.yaml").unwrap();
        assert_eq!(path_of(&uri), Some(PathBuf::from("/tmp/a b/x.yaml")));
        assert_eq!(uri_of(std::path::Path::new("/tmp/a b/x.yaml")), Some(uri));
        assert_eq!(
            path_of(&Uri::from_str("untitled:Untitled-1").unwrap()),
            None
        );
    }
}
