//! Autotask event triggers (`autotask.ticket`, `autotask.ticket_note`, `autotask.company`,
//! `autotask.contact`, `autotask.configuration_item`): registering the Autotask webhooks
//! ([`sync_webhooks`], [`keep_in_sync`]) and accepting their callouts (`POST /hooks/autotask/{workflow}/{trigger}`
//! and its `/deactivated` notice URL).
//!
//! Registration: every enabled Autotask trigger of a deployed workflow gets one
//! `{Entity}Webhooks` record in the tenant of its integration instance (org `default`, the
//! trigger's `integration:` override picks the instance), with a random 64-character secret,
//! the subscribed events and a `Fields` child per field: the trigger's `fields:` (else
//! [`default_fields`]) as subscribed fields, plus [`display_always_fields`] sent in every
//! payload. Field ids come from the `/{X}WebhookFields/entityInformation/fields` picklist of
//! `fieldID` (label = field name). What was registered is stored (`AutotaskWebhook`) with a
//! hash of entity, events, fields, URL and instance: a change deletes the old webhook and
//! creates a new one; webhooks of removed or disabled triggers are deleted; a webhook that
//! Autotask deleted or deactivated is created again. Nothing changed → no write calls.
//!
//! Callouts: the `X-Hook-Signature` (`sha1=` base64 HMAC-SHA1 of the raw body with the
//! stored secret) is checked in constant time over the bytes received; the event is
//! de-duplicated on `autotask:{Guid}:{Id}:{SequenceNumber}` so a retried callout starts
//! nothing twice.

mod callout;
mod sync;

pub use callout::{
    Callout, Routing, Stop, authenticate, company_of, deactivation_registration, entity, event_for,
    registrations, starts, subscribed,
};
pub use sync::{
    SyncError, SyncFailure, SyncReport, SyncedWebhook, callout_url, keep_in_sync, sync_webhooks,
};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use weft_engine::model::AutotaskEvent;

use crate::constant_time_eq;

/// Largest callout body accepted (bytes).
pub const MAX_BODY: u64 = 1024 * 1024;
/// The signature header Autotask sends.
pub const SIGNATURE_HEADER: &str = "x-hook-signature";

/// The webhook entity of a trigger entity (`ticket` → `TicketWebhooks`).
pub fn webhook_entity(entity: &str) -> Option<&'static str> {
    Some(match entity {
        "ticket" => "TicketWebhooks",
        "ticket_note" => "TicketNoteWebhooks",
        "company" => "CompanyWebhooks",
        "contact" => "ContactWebhooks",
        "configuration_item" => "ConfigurationItemWebhooks",
        _ => return None,
    })
}

/// The fields subscribed when a trigger lists no `fields:` (their changes fire update events
/// and are sent).
pub fn default_fields(entity: &str) -> &'static [&'static str] {
    match entity {
        "ticket" => &[
            "status",
            "priority",
            "title",
            "queueID",
            "assignedResourceID",
        ],
        "ticket_note" => &["title", "description", "noteType"],
        "company" => &["companyName", "companyType", "isActive"],
        "contact" => &["firstName", "lastName", "emailAddress", "isActive"],
        "configuration_item" => &["referenceTitle", "serialNumber", "isActive"],
        _ => &[],
    }
}

/// Fields sent in every payload (whether they changed or not): the record's id and what
/// links it to its company or ticket.
pub fn display_always_fields(entity: &str) -> &'static [&'static str] {
    match entity {
        "ticket" => &["id", "ticketNumber", "companyID"],
        "ticket_note" => &["id", "ticketID"],
        "company" => &["id"],
        "contact" => &["id", "companyID"],
        "configuration_item" => &["id", "companyID"],
        _ => &["id"],
    }
}

pub(crate) fn event_name(e: AutotaskEvent) -> &'static str {
    match e {
        AutotaskEvent::Create => "create",
        AutotaskEvent::Update => "update",
        AutotaskEvent::Delete => "delete",
    }
}

/// `sha1=<base64(HMAC-SHA1(secret, body))>`, as Autotask signs a callout.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!(
        "sha1={}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// Whether `header` (the `X-Hook-Signature` value) signs `body` with `secret`; compares in
/// constant time.
pub fn verify_signature(secret: &str, body: &[u8], header: &str) -> bool {
    let expected = signature(secret, body);
    let given = header.trim();
    // The `sha1=` prefix is case-insensitive; the base64 digest is not.
    let given = match given.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("sha1=") => &given[5..],
        _ => return false,
    };
    constant_time_eq(given.as_bytes(), &expected.as_bytes()[5..])
}

#[cfg(test)]
mod tests {
    use super::sync::{MAX_NAME, random_secret, webhook_name};
    use super::*;
    use serde_json::Value;

    /// HMAC-SHA1 of "The quick brown fox jumps over the lazy dog" with key "key" is
    /// de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9 (RFC 2104 test vector, as on Wikipedia).
    #[test]
    fn autotask_signature_known_vector() {
        let body = b"The quick brown fox jumps over the lazy dog";
        let digest = hex::decode("de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9").unwrap();
        let expected = format!(
            "sha1={}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(signature("key", body), expected);
        assert_eq!(expected, "sha1=3nybhbi3iqa8ino29wqQcBydtNk=");
        assert!(verify_signature("key", body, &expected));
        assert!(verify_signature(
            "key",
            body,
            "SHA1=3nybhbi3iqa8ino29wqQcBydtNk="
        ));
    }

    #[test]
    fn autotask_signature_rejects_tampering() {
        let body = br#"{"Action":"Create","Guid":"g","Id":1,"Fields":{"Title":"a\u0026b"}}"#;
        let sig = signature("s3cret", body);
        assert!(verify_signature("s3cret", body, &sig));
        // The same JSON re-serialized (`&` unescaped) no longer matches: raw bytes only.
        let reserialized =
            serde_json::to_vec(&serde_json::from_slice::<Value>(body).unwrap()).unwrap();
        assert_ne!(reserialized.as_slice(), body.as_slice());
        assert!(!verify_signature("s3cret", &reserialized, &sig));
        assert!(!verify_signature("other", body, &sig));
        assert!(!verify_signature("s3cret", body, ""));
        assert!(!verify_signature("s3cret", body, &sig[5..]));
        let mut flipped = sig.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert!(!verify_signature(
            "s3cret",
            body,
            std::str::from_utf8(&flipped).unwrap()
        ));
    }

    #[test]
    fn autotask_webhook_names_and_entities() {
        assert_eq!(webhook_entity("ticket"), Some("TicketWebhooks"));
        assert_eq!(
            webhook_entity("configuration_item"),
            Some("ConfigurationItemWebhooks")
        );
        assert_eq!(webhook_entity("invoice"), None);
        let long = webhook_name(&"w".repeat(40), "trigger");
        assert_eq!(long.chars().count(), MAX_NAME);
        assert_eq!(webhook_name("wf", "t"), "weft: wf.t");
        assert!(random_secret().len() >= 32);
        assert_eq!(
            callout_url("http://x:1/", "wf", "t"),
            "http://x:1/hooks/autotask/wf/t"
        );
    }
}
