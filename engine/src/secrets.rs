//! Secrets at rest: values weft must keep but never show (secret org variables, integration
//! credentials) are sealed with XChaCha20-Poly1305 before they reach the store.
//!
//! The key is 32 bytes: `WEFT_SECRET_KEY` (64 hex digits or base64 of 32 bytes; any other
//! text is hashed with SHA-256 into a key), else a key file created on first use with mode
//! 0600. A sealed value is `v1:` + base64(24-byte nonce ‖ ciphertext ‖ tag).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::Digest;

/// A sealing or opening failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The value was sealed with another key, or altered.
    #[error(
        "a stored secret cannot be opened: it was sealed with another key (WEFT_SECRET_KEY or the key file changed) or altered"
    )]
    WrongKey,
    /// The value is not in the sealed format.
    #[error("a stored secret is not in weft's sealed format")]
    Malformed,
    /// The key file cannot be read or created.
    #[error("cannot use the secret key file {path}")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Seals and opens secret values (the seam the store and the engine use).
pub trait SecretBox: Send + Sync + 'static {
    /// Encrypts `plain`.
    fn seal(&self, plain: &str) -> String;
    /// Decrypts what [`SecretBox::seal`] produced.
    ///
    /// # Errors
    /// Another key, altered or malformed data.
    fn open(&self, sealed: &str) -> Result<String, SecretError>;
}

/// XChaCha20-Poly1305 with one 32-byte key.
pub struct KeyBox {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for KeyBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBox(***)")
    }
}

const PREFIX: &str = "v1:";

impl KeyBox {
    /// A box with this key.
    pub fn new(key: [u8; 32]) -> KeyBox {
        KeyBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        }
    }

    /// The key from `WEFT_SECRET_KEY`'s text: 64 hex digits, base64 of 32 bytes, or any other
    /// text (a passphrase) hashed with SHA-256.
    pub fn from_text(text: &str) -> KeyBox {
        let t = text.trim();
        let raw = hex::decode(t)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
            .and_then(|b| <[u8; 32]>::try_from(b).ok());
        KeyBox::new(raw.unwrap_or_else(|| sha2::Sha256::digest(t.as_bytes()).into()))
    }

    /// The key in `path`, created (32 random bytes, hex, mode 0600) when missing.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn from_file(path: &Path) -> Result<KeyBox, SecretError> {
        let err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(KeyBox::from_text(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let key = random_bytes::<32>();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut f) => {
                        use std::io::Write;
                        f.write_all(hex::encode(key).as_bytes()).map_err(err)?;
                        Ok(KeyBox::new(key))
                    }
                    // Another process created it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(path).map_err(err)?;
                        Ok(KeyBox::from_text(&text))
                    }
                    Err(e) => Err(err(e)),
                }
            }
            Err(e) => Err(err(e)),
        }
    }
}

/// A fresh random key.
pub fn random_key() -> [u8; 32] {
    random_bytes()
}

fn random_bytes<const N: usize>() -> [u8; N] {
    // uuid's v4 comes from the operating system's random source.
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(16) {
        let r = uuid::Uuid::new_v4().into_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    out
}

impl SecretBox for KeyBox {
    fn seal(&self, plain: &str) -> String {
        let nonce_bytes = random_bytes::<24>();
        let nonce = XNonce::from_slice(&nonce_bytes);
        let sealed = self
            .cipher
            .encrypt(nonce, plain.as_bytes())
            .expect("encryption of a bounded value cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend(sealed);
        format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let b64 = sealed.strip_prefix(PREFIX).ok_or(SecretError::Malformed)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SecretError::Malformed)?;
        if bytes.len() < 24 + 16 {
            return Err(SecretError::Malformed);
        }
        let (nonce, data) = bytes.split_at(24);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), data)
            .map_err(|_| SecretError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SecretError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let a = KeyBox::from_text("correct horse battery staple");
        let sealed = a.seal("hunter2");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, a.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(a.open(&sealed).unwrap(), "hunter2");
        let b = KeyBox::from_text("another key");
        assert!(matches!(b.open(&sealed), Err(SecretError::WrongKey)));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(a.open(&altered).is_err());
        assert!(matches!(a.open("plain"), Err(SecretError::Malformed)));
        assert!(format!("{a:?}").contains("***"));
    }

    #[test]
    fn keys_come_from_hex_base64_or_a_passphrase() {
        let hexkey = "00".repeat(32);
        let from_hex = KeyBox::from_text(&hexkey);
        let from_b64 =
            KeyBox::from_text(&base64::engine::general_purpose::STANDARD.encode([0u8; 32]));
        let sealed = from_hex.seal("x");
        assert_eq!(from_b64.open(&sealed).unwrap(), "x");
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("weft-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("secret.key");
        let first = KeyBox::from_file(&path).unwrap();
        let second = KeyBox::from_file(&path).unwrap();
        assert_eq!(second.open(&first.seal("s")).unwrap(), "s");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
