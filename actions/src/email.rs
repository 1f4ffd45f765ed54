//! `email.send`: one message over SMTP.
//!
//! The integration (kind `email`) gives `host`, `port` (default 587 for `starttls`, 465 for
//! `tls`, 25 for `none`), `from` (`Name <addr>` or `addr`), `security` (`starttls` — the
//! default —, `tls`, `opportunistic` — STARTTLS when offered — or `none`), `username`, and
//! the secret `password`. The password never appears in a message.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use weft_engine::integration::Integration;
use weft_engine::{ActionContext, ActionError, ActionErrorKind, Registry, TypedAction};

use crate::openai::scrub_error;
use crate::params::{DurationParam, format_duration};
use crate::{cancelled, invalid_params};

/// The time limit when `timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) fn register(r: &mut Registry) {
    r.register(EmailSend);
}

/// One address or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Addresses {
    /// One address (`a@x.com` or `Name <a@x.com>`), or several separated by commas.
    One(String),
    /// A list of addresses.
    Many(Vec<String>),
}

impl Addresses {
    fn list(&self) -> Vec<String> {
        let items: Vec<&str> = match self {
            Addresses::One(s) => vec![s.as_str()],
            Addresses::Many(v) => v.iter().map(String::as_str).collect(),
        };
        let mut out = Vec::new();
        for item in items {
            // `Name, Jr. <a@x>` is rare; commas separate addresses.
            for part in item.split([',', ';']) {
                let part = part.trim();
                if !part.is_empty() {
                    out.push(part.to_string());
                }
            }
        }
        out
    }
}

/// Parameters of `email.send`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailParams {
    /// Recipients: an address (`a@x.com` or `Name <a@x.com>`), several separated by commas,
    /// or a list.
    pub to: Addresses,
    /// Copy recipients (same forms as `to`).
    pub cc: Option<Addresses>,
    /// Blind-copy recipients (same forms as `to`; not shown in the message).
    pub bcc: Option<Addresses>,
    /// The subject line.
    pub subject: String,
    /// The plain-text body. Give `text`, `html` or both (then mail clients choose).
    pub text: Option<String>,
    /// The HTML body.
    pub html: Option<String>,
    /// The sender, overriding the integration's `from`.
    pub from: Option<String>,
    /// Where replies go (`Reply-To`).
    pub reply_to: Option<String>,
    /// Time limit for the whole SMTP conversation (`60s`, or a number of seconds).
    #[schemars(extend("default" = "60s"))]
    pub timeout: Option<DurationParam>,
}

/// `email.send`: sends one message through the `email` integration's SMTP server; the
/// result is `{delivered: true, message_id, recipients, response}`.
///
/// Failures carry `data: {error_kind, retryable, code}`: temporary SMTP failures (4xx),
/// connection errors and timeouts are retryable, permanent ones (5xx) are not.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmailSend;

/// SMTP connection security.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    StartTls,
    /// STARTTLS when the server offers it, else plain.
    Opportunistic,
    Tls,
    None,
}

impl TypedAction for EmailSend {
    const NAME: &'static str = "email.send";
    const DESCRIPTION: &'static str =
        "Sends an email (text and/or HTML) over SMTP through the `email` integration.";
    type Params = EmailParams;

    async fn run(&self, cx: ActionContext, p: EmailParams) -> Result<Value, ActionError> {
        let integration = cx.integration("email")?;
        let secrets: Vec<String> = integration
            .secret_values()
            .filter(|s| s.len() >= 3)
            .map(str::to_string)
            .collect();
        let timeout = p.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |d| d.0);
        let (message, recipients, message_id) = build_message(&integration, &p)?;
        let (transport, label) = transport(&integration, timeout)?;
        let work = async {
            transport
                .send(message)
                .await
                .map_err(|e| smtp_error(&label, &e))
        };
        let result = tokio::select! {
            biased;
            () = cx.cancel.cancelled() => Err(cancelled(format!("{} cancelled", Self::NAME))),
            () = tokio::time::sleep(timeout + Duration::from_millis(500)) => Err(ActionError {
                kind: ActionErrorKind::Timeout,
                message: format!("{label} timed out after {}", format_duration(timeout)),
                data: Some(json!({"error_kind": "timeout", "retryable": true, "code": null})),
            }),
            r = work => r,
        };
        let response = result.map_err(|e| scrub_error(e, &secrets))?;
        Ok(json!({
            "delivered": true,
            "message_id": message_id,
            "recipients": recipients,
            "response": {
                "code": response.code().to_string(),
                "message": response.message().collect::<Vec<_>>().join(" "),
            },
        }))
    }
}

fn parse_mailbox(field: &str, raw: &str) -> Result<Mailbox, ActionError> {
    raw.trim().parse::<Mailbox>().map_err(|e| {
        invalid_params(
            EmailSend::NAME,
            format!("`{field}`: `{raw}` is not an email address ({e})"),
        )
    })
}

fn mailboxes(field: &str, a: &Addresses) -> Result<Vec<Mailbox>, ActionError> {
    a.list().iter().map(|s| parse_mailbox(field, s)).collect()
}

/// The message, its envelope recipients (addresses only) and its Message-ID.
fn build_message(
    integration: &Integration,
    p: &EmailParams,
) -> Result<(Message, Vec<String>, String), ActionError> {
    let invalid = |m: &str| invalid_params(EmailSend::NAME, m);
    let from_raw = p
        .from
        .as_deref()
        .or_else(|| integration.setting("from"))
        .or_else(|| integration.setting("username").filter(|u| u.contains('@')))
        .ok_or_else(|| {
            ActionError::failed(format!(
                "the `email` integration `{}` has no `from` (or give `from`)",
                integration.name
            ))
        })?;
    let from = parse_mailbox("from", from_raw)?;
    let to = mailboxes("to", &p.to)?;
    if to.is_empty() {
        return Err(invalid("`to` has no address"));
    }
    let cc =
        p.cc.as_ref()
            .map(|a| mailboxes("cc", a))
            .transpose()?
            .unwrap_or_default();
    let bcc = p
        .bcc
        .as_ref()
        .map(|a| mailboxes("bcc", a))
        .transpose()?
        .unwrap_or_default();
    if p.subject.contains(['\r', '\n']) {
        return Err(invalid("`subject` must be one line"));
    }
    let domain = from.email.domain().to_string();
    let message_id = format!(
        "<{}.{}@{}>",
        jiff::Timestamp::now().as_nanosecond(),
        std::process::id(),
        domain
    );
    let mut b = Message::builder()
        .from(from)
        .subject(p.subject.clone())
        .message_id(Some(message_id.clone()))
        .date_now();
    let mut recipients = Vec::new();
    for m in &to {
        recipients.push(m.email.to_string());
        b = b.to(m.clone());
    }
    for m in &cc {
        recipients.push(m.email.to_string());
        b = b.cc(m.clone());
    }
    for m in &bcc {
        recipients.push(m.email.to_string());
        b = b.bcc(m.clone());
    }
    if let Some(r) = p.reply_to.as_deref().filter(|r| !r.trim().is_empty()) {
        let list: Mailboxes = Addresses::One(r.to_string())
            .list()
            .iter()
            .map(|s| parse_mailbox("reply_to", s))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .collect();
        for m in list {
            b = b.reply_to(m);
        }
    }
    let text = p.text.clone().filter(|t| !t.is_empty());
    let html = p.html.clone().filter(|t| !t.is_empty());
    let built = match (text, html) {
        (Some(t), Some(h)) => b.multipart(MultiPart::alternative_plain_html(t, h)),
        (Some(t), None) => b.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(t),
        ),
        (None, Some(h)) => {
            b.singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(h))
        }
        (None, None) => return Err(invalid("give `text` or `html`")),
    };
    let message = built
        .map_err(|e| invalid_params(EmailSend::NAME, format!("cannot build the message: {e}")))?;
    Ok((message, recipients, message_id))
}

/// The SMTP transport and a label (`email.send smtp://host:port`) for messages.
fn transport(
    integration: &Integration,
    timeout: Duration,
) -> Result<(AsyncSmtpTransport<Tokio1Executor>, String), ActionError> {
    let fail = |m: String| {
        ActionError::failed(format!(
            "the `email` integration `{}`: {m}",
            integration.name
        ))
    };
    let host = integration
        .setting("host")
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or_else(|| fail("no `host`".into()))?
        .to_string();
    let security = match integration
        .setting("security")
        .or_else(|| integration.setting("tls"))
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("starttls") => Security::StartTls,
        Some("opportunistic") => Security::Opportunistic,
        Some("tls" | "ssl" | "smtps" | "implicit") => Security::Tls,
        Some("none" | "plain" | "off") => Security::None,
        Some(other) => {
            return Err(fail(format!(
                "`security` must be starttls, tls, opportunistic or none, not `{other}`"
            )));
        }
    };
    let port = match integration.settings.get("port") {
        None => match security {
            Security::StartTls | Security::Opportunistic => 587,
            Security::Tls => 465,
            Security::None => 25,
        },
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| *n > 0)
            .ok_or_else(|| fail(format!("`port` is not a port number: {v}")))?,
    };
    let tls = match security {
        Security::None => Tls::None,
        Security::StartTls | Security::Tls | Security::Opportunistic => {
            let params = TlsParameters::new(host.clone())
                .map_err(|e| fail(format!("cannot set up TLS: {e}")))?;
            match security {
                Security::Tls => Tls::Wrapper(params),
                Security::Opportunistic => Tls::Opportunistic(params),
                _ => Tls::Required(params),
            }
        }
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some(user) = integration
        .setting("username")
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        let password = integration.secret("password").unwrap_or_default();
        b = b.credentials(Credentials::new(user.to_string(), password.to_string()));
    }
    let scheme = match security {
        Security::Tls => "smtps",
        _ => "smtp",
    };
    Ok((
        b.build(),
        format!("{} {scheme}://{host}:{port}", EmailSend::NAME),
    ))
}

fn smtp_error(label: &str, e: &lettre::transport::smtp::Error) -> ActionError {
    let code = e.status().map(|c| c.to_string());
    let (error_kind, retryable) = if e.is_timeout() {
        ("timeout", true)
    } else if e.is_permanent() {
        ("rejected", false)
    } else if e.is_transient() {
        ("temporary", true)
    } else if e.is_tls() {
        ("tls", false)
    } else {
        ("connection", true)
    };
    let mut message = format!("{label} failed: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let part = s.to_string();
        if !message.contains(&part) {
            message.push_str(": ");
            message.push_str(&part);
        }
        source = s.source();
    }
    ActionError {
        kind: if e.is_timeout() {
            ActionErrorKind::Timeout
        } else {
            ActionErrorKind::Failed
        },
        message,
        data: Some(json!({"error_kind": error_kind, "retryable": retryable, "code": code})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_for_each_security() {
        for (security, port, label) in [
            (None, None, "smtp://mail.example.com:587"),
            (Some("tls"), None, "smtps://mail.example.com:465"),
            (
                Some("opportunistic"),
                Some(json!("2525")),
                "smtp://mail.example.com:2525",
            ),
            (Some("none"), Some(json!(25)), "smtp://mail.example.com:25"),
        ] {
            let mut i = Integration::new("email", "default")
                .with_setting("host", "mail.example.com")
                .with_setting("username", "u")
                .with_secret("password", "p");
            if let Some(s) = security {
                i = i.with_setting("security", s);
            }
            if let Some(p) = port {
                i = i.with_setting("port", p);
            }
            let (_, l) = transport(&i, DEFAULT_TIMEOUT).unwrap();
            assert_eq!(l, format!("email.send {label}"));
        }
        let i = Integration::new("email", "x")
            .with_setting("host", "h")
            .with_setting("security", "bogus");
        assert!(transport(&i, DEFAULT_TIMEOUT).is_err());
        let i = Integration::new("email", "x")
            .with_setting("host", "h")
            .with_setting("port", 0);
        assert!(transport(&i, DEFAULT_TIMEOUT).is_err());
    }

    #[test]
    fn addresses_split() {
        let a: Addresses = serde_json::from_value(json!("a@x.com, B <b@y.org>")).unwrap();
        assert_eq!(a.list(), vec!["a@x.com", "B <b@y.org>"]);
        let a: Addresses = serde_json::from_value(json!(["a@x.com", " c@z.net "])).unwrap();
        assert_eq!(a.list(), vec!["a@x.com", "c@z.net"]);
    }

    #[test]
    fn builds_a_message() {
        let i = Integration::new("email", "default").with_setting("from", "Weft <weft@msp.test>");
        let p: EmailParams = serde_json::from_value(json!({
            "to": ["a@x.com"], "cc": "c@x.com", "bcc": "h@x.com", "subject": "Hi", "text": "t", "html": "<b>h</b>"
        }))
        .unwrap();
        let (m, rcpt, id) = build_message(&i, &p).unwrap();
        assert_eq!(rcpt, vec!["a@x.com", "c@x.com", "h@x.com"]);
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Subject: Hi"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(!raw.contains("h@x.com"), "bcc is not a header: {raw}");
        assert!(raw.contains(&id), "{raw}");
        let p: EmailParams =
            serde_json::from_value(json!({"to": "not an address", "subject": "s", "text": "t"}))
                .unwrap();
        assert!(build_message(&i, &p).is_err());
        let p: EmailParams =
            serde_json::from_value(json!({"to": "a@x.com", "subject": "s"})).unwrap();
        assert!(build_message(&i, &p).is_err());
    }
}
