//! Form links: the token in a `/forms/{token}` URL.
//!
//! - A **standing** link (`wfl_` and 256 random bits) is an org's own link to a form, kept in
//!   the store sealed (operators copy it) and hashed (what a request is looked up by).
//! - A **signed** link (`wfs_…`) carries its facts in the token itself — the form, the org,
//!   the prefilled values, whether it may be used once, when it expires — sealed with the
//!   installation's key, so nobody without the key can make one or change a prefilled value.
//!   Workflows make them with `form_link(…)` in templates; `weft form link --prefill` and the
//!   API make them too, and the console's preview is one that starts nothing.
//!
//! Templates see the links of the execution's org as `ORG.FORMS` (an object of this module:
//! it holds the key, so a workflow can only ever sign links for the org it runs for).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use minijinja::value::{Enumerator, Object, ObjectRepr};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::secrets::SecretBox;
use crate::store::{Store, StoreError};

/// The prefix of standing-link tokens.
pub const STANDING_PREFIX: &str = "wfl_";
/// The prefix of signed-link tokens.
pub const SIGNED_PREFIX: &str = "wfs_";
/// The most prefill a signed link carries, as JSON (it travels in the URL).
pub const MAX_PREFILL_BYTES: usize = 2048;
/// How long a signed link works when nobody says.
pub const DEFAULT_SIGNED_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

/// A new standing-link token: `wfl_` and 256 random bits.
pub fn new_token() -> String {
    format!(
        "{STANDING_PREFIX}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// What a link is looked up by (and what its page's anti-forgery token and rate limit are
/// keyed by): the token's SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The link people open: `{base}/forms/{token}`.
pub fn url(base: &str, token: &str) -> String {
    format!("{}/forms/{token}", base.trim_end_matches('/'))
}

/// Is `s` shaped like a standing-link token (before anything is looked up)?
pub fn plausible_token(s: &str) -> bool {
    s.strip_prefix(STANDING_PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// How often a signed link may be used, and what a use does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Use {
    /// Any number of times until it expires.
    Reusable,
    /// Once.
    SingleUse,
    /// The console's preview: answers are checked, nothing starts and nothing is stored.
    Preview,
}

impl Use {
    /// `standing`-style name shown in `TRIGGER.form.link` and the stored submission.
    pub fn as_str(self) -> &'static str {
        match self {
            Use::Reusable => "signed",
            Use::SingleUse => "single_use",
            Use::Preview => "preview",
        }
    }
}

/// The facts a signed link carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signed {
    /// The form.
    #[serde(rename = "f")]
    pub form: String,
    /// The org whose people fill it in.
    #[serde(rename = "o")]
    pub org: String,
    /// Values fixed by whoever made the link: a form field's value cannot be changed on the
    /// page; every key reaches the workflow as `TRIGGER.form.prefill`.
    #[serde(rename = "p", default, skip_serializing_if = "Map::is_empty")]
    pub prefill: Map<String, Value>,
    /// Unique per link (a single-use link is used up by it).
    #[serde(rename = "n")]
    pub nonce: String,
    /// How often it may be used.
    #[serde(rename = "u")]
    pub uses: Use,
    /// When it was made (Unix seconds): rotating the org's standing link withdraws the signed
    /// links made before.
    #[serde(rename = "i")]
    pub issued_at: i64,
    /// When it stops working (Unix seconds).
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// Why a signed link was not made or not opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The token was not made by this installation, or was changed.
    #[error("this form link is not valid: it was changed or not made by this weft installation")]
    Tampered,
    /// The prefill is not a mapping or is too large for a URL.
    #[error("{0}")]
    Prefill(String),
    /// The expiry is not one weft reads, or is past.
    #[error("{0}")]
    Expiry(String),
}

impl Signed {
    /// A new link's facts: a fresh nonce, issued `now`, expiring after `lifetime` (30 days
    /// when `None`).
    ///
    /// # Errors
    /// A prefill that is not an object of at most [`MAX_PREFILL_BYTES`] of JSON.
    pub fn new(
        form: &str,
        org: &str,
        prefill: Map<String, Value>,
        uses: Use,
        now: jiff::Timestamp,
        expires_at: Option<jiff::Timestamp>,
    ) -> Result<Signed, LinkError> {
        let size = serde_json::to_string(&prefill).map_or(usize::MAX, |s| s.len());
        if size > MAX_PREFILL_BYTES {
            return Err(LinkError::Prefill(format!(
                "the prefill of a form link is {size} bytes of JSON; at most {MAX_PREFILL_BYTES} fit in a link (pass ids, not records)"
            )));
        }
        let expires_at = match expires_at {
            Some(t) => t,
            None => now
                .checked_add(DEFAULT_SIGNED_LIFETIME)
                .map_err(|e| LinkError::Expiry(e.to_string()))?,
        };
        Ok(Signed {
            form: form.to_string(),
            org: org.to_string(),
            prefill,
            nonce: uuid::Uuid::new_v4().simple().to_string(),
            uses,
            issued_at: now.as_second(),
            expires_at: expires_at.as_second(),
        })
    }

    /// The token: `wfs_` and the facts sealed with the installation's key (URL-safe).
    pub fn token(&self, secrets: &dyn SecretBox) -> String {
        let plain = serde_json::to_string(self).expect("link facts serialize");
        let sealed = secrets.seal(&plain);
        let raw = sealed
            .strip_prefix("v1:")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .expect("a sealed value is v1: and base64");
        format!(
            "{SIGNED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        )
    }

    /// The facts of a `wfs_` token.
    ///
    /// # Errors
    /// [`LinkError::Tampered`]: not a signed token, another key, or changed.
    pub fn open(secrets: &dyn SecretBox, token: &str) -> Result<Signed, LinkError> {
        let raw = token
            .strip_prefix(SIGNED_PREFIX)
            .filter(|b| b.len() <= 8 * 1024)
            .and_then(|b| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b)
                    .ok()
            })
            .ok_or(LinkError::Tampered)?;
        let sealed = format!(
            "v1:{}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        );
        let plain = secrets.open(&sealed).map_err(|_| LinkError::Tampered)?;
        serde_json::from_str(&plain).map_err(|_| LinkError::Tampered)
    }

    /// What a submission through this link is stored under: a single-use link's is unique,
    /// so a second use is refused by the store even when two arrive at once.
    pub fn submission_link(&self) -> String {
        format!("{}:{}", self.uses.as_str(), self.nonce)
    }
}

/// When a link given `expires` stops working: `never` (`None`), an RFC 3339 time, a date
/// (the end of that day, UTC) or a duration from `now` (`30d`, `12h`).
///
/// # Errors
/// Anything else, or a time already past, with what to write instead.
pub fn parse_expiry(
    expires: &str,
    now: jiff::Timestamp,
) -> Result<Option<jiff::Timestamp>, LinkError> {
    let e = expires.trim();
    let far = || LinkError::Expiry(format!("`{e}` is too far in the future"));
    if e.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let at = if let Ok(t) = e.parse::<jiff::Timestamp>() {
        t
    } else if let Ok(d) = e.parse::<jiff::civil::Date>() {
        d.tomorrow()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC))
            .map(|z| z.timestamp())
            .map_err(|_| far())?
    } else if let Some(d) = crate::model::parse_duration(e) {
        jiff::SignedDuration::try_from(d)
            .ok()
            .and_then(|d| now.checked_add(d).ok())
            .ok_or_else(far)?
    } else {
        return Err(LinkError::Expiry(format!(
            "`{e}` is not an expiry: write `never`, a date (2027-01-31), a time (2027-01-31T18:00:00Z) or a duration from now (30d)"
        )));
    };
    if at <= now {
        return Err(LinkError::Expiry(format!(
            "`{e}` is already past: a link must expire in the future"
        )));
    }
    Ok(Some(at))
}

/// `ORG.FORMS` in templates: every deployed form by name, with the org's standing link
/// (`{name, url}`; `url` is none until one is issued), and what `form_link()` signs with.
pub struct OrgForms {
    org: String,
    base: String,
    secrets: Arc<dyn SecretBox>,
    /// Form → the org's standing link, when issued, switched on and openable.
    forms: BTreeMap<String, Option<String>>,
}

impl std::fmt::Debug for OrgForms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgForms")
            .field("org", &self.org)
            .field("forms", &self.forms.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl OrgForms {
    /// The deployed forms and `org`'s standing links; links are `{base}/forms/…`.
    ///
    /// # Errors
    /// Store failures.
    pub async fn load(
        store: &dyn Store,
        secrets: Arc<dyn SecretBox>,
        base: &str,
        org: &str,
    ) -> Result<OrgForms, StoreError> {
        let mut forms: BTreeMap<String, Option<String>> = store
            .list_forms()
            .await?
            .into_iter()
            .map(|f| (f.name, None))
            .collect();
        for link in store.form_links(None, Some(org)).await? {
            if !link.enabled {
                continue;
            }
            // A link sealed under another key cannot be shown; it is not the execution's
            // problem (operators see it in `weft form links`).
            if let (Some(slot), Ok(token)) = (forms.get_mut(&link.form), secrets.open(&link.token))
            {
                *slot = Some(url(base, &token));
            }
        }
        Ok(OrgForms {
            org: org.to_string(),
            base: base.trim_end_matches('/').to_string(),
            secrets,
            forms,
        })
    }

    /// For an org that is not registered: no forms, and `form_link()` explains why.
    pub fn none(org: &str, secrets: Arc<dyn SecretBox>) -> OrgForms {
        OrgForms {
            org: org.to_string(),
            base: String::new(),
            secrets,
            forms: BTreeMap::new(),
        }
    }

    /// A signed link to `form` for this org: its URL and what it carries.
    ///
    /// # Errors
    /// An unknown form, a prefill too large, an expiry past or unreadable.
    pub fn sign(
        &self,
        form: &str,
        prefill: Map<String, Value>,
        uses: Use,
        now: jiff::Timestamp,
        expires_at: Option<jiff::Timestamp>,
    ) -> Result<(String, Signed), String> {
        if self.base.is_empty() {
            return Err(format!(
                "form_link(): `{}` is not a registered organization; form links are made for an org's people (`weft org add NAME`)",
                self.org
            ));
        }
        if !self.forms.contains_key(form) {
            let known: Vec<&str> = self.forms.keys().map(String::as_str).collect();
            return Err(format!(
                "form_link(): no form `{form}` is deployed (deployed: {}); deploy it with `weft deploy forms/{form}.yaml`",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        }
        let signed = Signed::new(form, &self.org, prefill, uses, now, expires_at)
            .map_err(|e| format!("form_link(): {e}"))?;
        Ok((
            url(&self.base, &signed.token(self.secrets.as_ref())),
            signed,
        ))
    }
}

impl Object for OrgForms {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        let name = key.as_str()?;
        let standing = self.forms.get(name)?;
        Some(minijinja::context! { name => name, url => standing.clone() })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.forms
                .keys()
                .map(|k| minijinja::Value::from(k.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{KeyBox, random_key};

    #[test]
    fn standing_tokens_are_unguessable_and_looked_up_by_hash() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(plausible_token(&a), "{a}");
        assert!(!plausible_token("wfl_../../etc"));
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
        let hash = token_hash(&a);
        assert_eq!(hash.len(), 64);
        assert!(
            !hash.contains(&a[4..20]),
            "the hash does not carry the token"
        );
        assert_eq!(url("http://x/", &a), format!("http://x/forms/{a}"));
    }

    fn prefill() -> Map<String, Value> {
        serde_json::json!({"ticket_id": 4711})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn a_signed_link_opens_with_its_facts_and_only_under_its_key() {
        let key = KeyBox::new(random_key());
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let made =
            Signed::new("offboarding", "acme", prefill(), Use::SingleUse, now, None).unwrap();
        let token = made.token(&key);
        assert!(token.starts_with("wfs_"));
        assert!(
            token[4..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe: {token}"
        );
        assert!(!token.contains("4711"), "the prefill is sealed, not shown");
        let opened = Signed::open(&key, &token).unwrap();
        assert_eq!(opened, made);
        assert_eq!(opened.expires_at - opened.issued_at, 30 * 24 * 3600);

        let other = KeyBox::new(random_key());
        assert_eq!(Signed::open(&other, &token), Err(LinkError::Tampered));
        // Any changed character is refused.
        let mut bytes = token.into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert_eq!(Signed::open(&key, &changed), Err(LinkError::Tampered));
        assert_eq!(Signed::open(&key, "wfs_%%%"), Err(LinkError::Tampered));
        assert_eq!(Signed::open(&key, "wfl_abc"), Err(LinkError::Tampered));
    }

    #[test]
    fn a_prefill_must_fit_in_a_url() {
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let big = serde_json::json!({"notes": "x".repeat(MAX_PREFILL_BYTES)});
        let e = Signed::new(
            "f",
            "acme",
            big.as_object().cloned().unwrap(),
            Use::Reusable,
            now,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("pass ids"), "{e}");
    }

    #[test]
    fn expiries_read_as_people_write_them() {
        let now: jiff::Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        assert_eq!(parse_expiry("never", now), Ok(None));
        assert_eq!(
            parse_expiry("7d", now).unwrap().unwrap().to_string(),
            "2026-12-13T10:00:00Z"
        );
        assert_eq!(
            parse_expiry("2027-01-31", now)
                .unwrap()
                .unwrap()
                .to_string(),
            "2027-02-01T00:00:00Z"
        );
        assert!(parse_expiry("2020-01-01T00:00:00Z", now).is_err());
        let e = parse_expiry("soonish", now).unwrap_err().to_string();
        assert!(e.contains("30d"), "{e}");
    }

    #[test]
    fn org_forms_sign_only_known_forms_for_registered_orgs() {
        let key: Arc<dyn SecretBox> = Arc::new(KeyBox::new(random_key()));
        let now = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let forms = OrgForms {
            org: "acme".into(),
            base: "https://weft.example".into(),
            secrets: key.clone(),
            forms: BTreeMap::from([("offboarding".to_string(), None)]),
        };
        let (link, made) = forms
            .sign("offboarding", prefill(), Use::SingleUse, now, None)
            .unwrap();
        let token = link.strip_prefix("https://weft.example/forms/").unwrap();
        let opened = Signed::open(key.as_ref(), token).unwrap();
        assert_eq!((opened.org.as_str(), opened.uses), ("acme", Use::SingleUse));
        assert_eq!(opened, made);
        let e = forms
            .sign("nope", Map::new(), Use::Reusable, now, None)
            .unwrap_err();
        assert!(e.contains("deployed: offboarding"), "{e}");
        let e = OrgForms::none("ghost", key)
            .sign("offboarding", Map::new(), Use::Reusable, now, None)
            .unwrap_err();
        assert!(e.contains("not a registered organization"), "{e}");
    }
}
