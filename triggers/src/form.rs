//! Form links: the unguessable token in a `/forms/{token}` URL, and how a request finds the
//! link by it (its SHA-256, so the table never holds a usable token in clear).

use sha2::{Digest, Sha256};

/// A new link token: `wfl_` and 256 random bits.
pub fn new_token() -> String {
    crate::random_token("wfl_")
}

/// What a link is looked up by.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The link people open: `{base}/forms/{token}`.
pub fn url(base: &str, token: &str) -> String {
    format!("{}/forms/{token}", base.trim_end_matches('/'))
}

/// Is `s` shaped like a token this module issues (before anything is looked up)?
pub fn plausible_token(s: &str) -> bool {
    s.strip_prefix("wfl_")
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unguessable_and_looked_up_by_hash() {
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
}
