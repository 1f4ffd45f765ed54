//! Secrets at rest: values weft must keep but never show (secret org variables, integration
//! credentials) are sealed with XChaCha20-Poly1305 before they reach the store.
//!
//! The key is 32 bytes, from `WEFT_SECRET_KEY` or else a key file:
//!
//! - `WEFT_SECRET_KEY` holding 64 hex digits or base64 of 32 bytes is that key.
//! - Any other `WEFT_SECRET_KEY` text is a passphrase (at least [`MIN_PASSPHRASE_CHARS`]
//!   characters), stretched with Argon2id (19 MiB, 2 passes, 1 lane) and a random 16-byte
//!   salt kept in the database's settings under [`SALT_SETTING`], so that every process
//!   sharing the database derives the same key ([`KeyBox::from_key_or_passphrase`]).
//!   Values sealed before passphrases were stretched (when a passphrase went through one
//!   SHA-256) still open: the box keeps that legacy key for opening only, and saving such a
//!   value again seals it under the Argon2id key.
//! - The key file holds a 32-byte key (64 hex digits or base64); it is created on first use
//!   with mode 0600 (its folder 0700). An empty or garbled file is refused, never hashed.
//!
//! A sealed value is `v1:` + base64(24-byte nonce ‖ ciphertext ‖ tag).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::Digest;

use crate::store::{Store, StoreError};

/// The database setting holding the salt passphrases are stretched with (32 hex digits),
/// created by the first process that needs it.
pub const SALT_SETTING: &str = "secret_key_salt";

/// The shortest passphrase `WEFT_SECRET_KEY` may hold.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Argon2id's cost, pinned (it is OWASP's recommended minimum and the `argon2` crate's
/// default today): changing any of these changes every passphrase-derived key.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// A sealing or opening failure, or a key that cannot be had.
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
    /// The key file does not hold a 32-byte key.
    #[error(
        "the secret key file {path} {problem}: it must hold a 32-byte key, 64 hex digits or base64 (make one with `openssl rand -hex 32 > {path}`){hint}"
    )]
    BadKeyFile {
        /// The file.
        path: String,
        /// What is wrong (`is empty`, `does not hold a 32-byte key`).
        problem: &'static str,
        /// How else to fix it.
        hint: &'static str,
    },
    /// `WEFT_SECRET_KEY` is a passphrase too short to stretch into a key.
    #[error(
        "WEFT_SECRET_KEY is a passphrase of {chars} characters: use at least {min}, or better a random key of 64 hex digits (make one with `openssl rand -hex 32`)",
        min = MIN_PASSPHRASE_CHARS
    )]
    ShortPassphrase {
        /// Its length.
        chars: usize,
    },
    /// The salt for passphrases cannot be read or stored.
    #[error("cannot read or create the passphrase salt (database setting `{SALT_SETTING}`)", SALT_SETTING = SALT_SETTING)]
    Salt(#[source] StoreError),
    /// The stored salt is not 16 bytes of hex.
    #[error(
        "the database setting `{SALT_SETTING}` (the passphrase salt) is not 32 hex digits; it was altered",
        SALT_SETTING = SALT_SETTING
    )]
    BadSalt,
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

/// XChaCha20-Poly1305 with one 32-byte key (and, for a passphrase, the key weft derived from
/// it before passphrases were stretched, to open older values with).
pub struct KeyBox {
    cipher: XChaCha20Poly1305,
    /// Opens only: values sealed under `SHA-256(passphrase)`.
    legacy: Option<XChaCha20Poly1305>,
}

impl fmt::Debug for KeyBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBox(***)")
    }
}

const PREFIX: &str = "v1:";

/// 64 hex digits or base64 of 32 bytes (surrounding whitespace ignored) as that key.
pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    hex::decode(t)
        .ok()
        .or_else(|| base64::engine::general_purpose::STANDARD.decode(t).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

/// The key Argon2id stretches `passphrase` into with `salt` (the pinned cost above).
fn stretch(passphrase: &str, salt: &[u8; 16]) -> [u8; 32] {
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
        .expect("the pinned Argon2 parameters are valid");
    let mut key = [0u8; 32];
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .expect("a 16-byte salt and a 32-byte output are within Argon2's limits");
    key
}

/// The salt passphrases are stretched with in `store`: the stored one, else a random one
/// stored now (the first of several processes to store it wins; all use that one).
///
/// # Errors
/// The store fails, or the stored salt is not 32 hex digits.
pub async fn passphrase_salt(store: &dyn Store) -> Result<[u8; 16], SecretError> {
    let fresh = hex::encode(random_bytes::<16>());
    let (stored, _created) = store
        .ensure_setting(SALT_SETTING, &fresh)
        .await
        .map_err(SecretError::Salt)?;
    hex::decode(stored.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or(SecretError::BadSalt)
}

impl KeyBox {
    /// A box with this key.
    pub fn new(key: [u8; 32]) -> KeyBox {
        KeyBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
            legacy: None,
        }
    }

    /// The box `WEFT_SECRET_KEY`'s text gives for the database `store`: a 32-byte key as
    /// itself (see [`parse_key`]), a passphrase through [`KeyBox::from_passphrase`] with the
    /// database's salt (created on first use).
    ///
    /// # Errors
    /// A passphrase shorter than [`MIN_PASSPHRASE_CHARS`]; the salt cannot be had.
    pub async fn from_key_or_passphrase(
        text: &str,
        store: &dyn Store,
    ) -> Result<KeyBox, SecretError> {
        if let Some(key) = parse_key(text) {
            return Ok(KeyBox::new(key));
        }
        // Refused before anything is written to the database.
        check_passphrase(text)?;
        let salt = passphrase_salt(store).await?;
        KeyBox::from_passphrase(text, &salt)
    }

    /// The box of a passphrase (surrounding whitespace ignored): sealing and opening with its
    /// Argon2id stretch under `salt`, and also opening with `SHA-256(passphrase)`, the key
    /// weft used for a passphrase before, so that values sealed then still open (they are
    /// sealed under the new key when saved again).
    ///
    /// # Errors
    /// A passphrase shorter than [`MIN_PASSPHRASE_CHARS`].
    pub fn from_passphrase(passphrase: &str, salt: &[u8; 16]) -> Result<KeyBox, SecretError> {
        check_passphrase(passphrase)?;
        let t = passphrase.trim();
        let legacy: [u8; 32] = sha2::Sha256::digest(t.as_bytes()).into();
        Ok(KeyBox {
            legacy: Some(XChaCha20Poly1305::new(&legacy.into())),
            ..KeyBox::new(stretch(t, salt))
        })
    }

    /// A 32-byte key's text as that key, any other text hashed with one SHA-256: how weft
    /// read `WEFT_SECRET_KEY` before passphrases were stretched. Kept for tests and tools
    /// that must reproduce that key; weft itself uses [`KeyBox::from_key_or_passphrase`].
    pub fn from_text(text: &str) -> KeyBox {
        let t = text.trim();
        KeyBox::new(parse_key(t).unwrap_or_else(|| sha2::Sha256::digest(t.as_bytes()).into()))
    }

    /// The key in `path`, created (32 random bytes, hex, mode 0600, its missing folders
    /// 0700) when missing. An existing file readable by others is made owner-only.
    ///
    /// # Errors
    /// The file cannot be read or written, or does not hold a 32-byte key (an empty file,
    /// a passphrase…: never hashed into a key).
    pub fn from_file(path: &Path) -> Result<KeyBox, SecretError> {
        let err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => read_key_file(path, text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir).map_err(err)?;
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
                        read_key_file(path, text)
                    }
                    Err(e) => Err(err(e)),
                }
            }
            Err(e) => Err(err(e)),
        }
    }
}

fn check_passphrase(text: &str) -> Result<(), SecretError> {
    let chars = text.trim().chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(SecretError::ShortPassphrase { chars });
    }
    Ok(())
}

/// The key in the key file `path` whose content was `text`.
fn read_key_file(path: &Path, mut text: String) -> Result<KeyBox, SecretError> {
    // A process creating the file writes the key right after creating it: one reading in
    // between sees it empty for a moment. Look again before calling it empty.
    for _ in 0..20 {
        if !text.trim().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
        text = std::fs::read_to_string(path).map_err(|source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        })?;
    }
    if let Err(e) = restrict_to_owner(path) {
        tracing::warn!(file = %path.display(), "cannot make the secret key file owner-only: {e}");
    }
    let bad = |problem, hint| SecretError::BadKeyFile {
        path: path.display().to_string(),
        problem,
        hint,
    };
    if text.trim().is_empty() {
        return Err(bad("is empty", ", or delete it to have weft create one"));
    }
    parse_key(&text).map(KeyBox::new).ok_or_else(|| {
        bad(
            "does not hold a 32-byte key",
            "; if it holds a passphrase, give that as WEFT_SECRET_KEY instead",
        )
    })
}

/// Creates `dir` and its missing parents, those it creates accessible to the owner only
/// (0700) on unix. An existing folder is left as it is: it may be shared on purpose.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Takes the group's and others' permissions off `path` on unix, when it has any (a file
/// made by an older weft, or copied in with the default umask). A missing file is fine.
pub(crate) fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
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

/// Set once a value opened only with a legacy key has been reported.
static LEGACY_REPORTED: AtomicBool = AtomicBool::new(false);

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
        let nonce = XNonce::from_slice(nonce);
        let plain = match self.cipher.decrypt(nonce, data) {
            Ok(plain) => plain,
            Err(_) => {
                let legacy = self.legacy.as_ref().ok_or(SecretError::WrongKey)?;
                let plain = legacy
                    .decrypt(nonce, data)
                    .map_err(|_| SecretError::WrongKey)?;
                if !LEGACY_REPORTED.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "a secret sealed under the passphrase's old SHA-256 key was opened; it is sealed under the Argon2id key when saved again"
                    );
                }
                plain
            }
        };
        String::from_utf8(plain).map_err(|_| SecretError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prelude::*;

    const PASS: &str = "correct horse battery staple";

    fn temp_dir() -> std::path::PathBuf {
        std::env::temp_dir().join(format!("weft-key-{}", uuid::Uuid::new_v4()))
    }

    #[test]
    fn sealed_values_open_with_the_same_key_only() {
        let a = KeyBox::from_passphrase(PASS, &[1; 16]).unwrap();
        let sealed = a.seal("hunter2");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, a.seal("hunter2"), "a fresh nonce each time");
        assert_eq!(a.open(&sealed).unwrap(), "hunter2");
        let b = KeyBox::from_passphrase("another passphrase", &[1; 16]).unwrap();
        assert!(matches!(b.open(&sealed), Err(SecretError::WrongKey)));
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(a.open(&altered).is_err());
        assert!(matches!(a.open("plain"), Err(SecretError::Malformed)));
        assert!(format!("{a:?}").contains("***"));
    }

    #[test]
    fn keys_come_from_hex_or_base64() {
        let hexkey = "00".repeat(32);
        let from_hex = KeyBox::from_text(&hexkey);
        let from_b64 =
            KeyBox::from_text(&base64::engine::general_purpose::STANDARD.encode([0u8; 32]));
        let sealed = from_hex.seal("x");
        assert_eq!(from_b64.open(&sealed).unwrap(), "x");
        assert_eq!(parse_key(&format!(" {hexkey}\n")), Some([0; 32]));
        assert_eq!(parse_key(&"00".repeat(31)), None, "31 bytes is no key");
    }

    #[test]
    fn passphrases_are_stretched_with_the_salt() {
        let salt = [7u8; 16];
        let a = KeyBox::from_passphrase(PASS, &salt).unwrap();
        let again = KeyBox::from_passphrase(&format!("  {PASS}\n"), &salt).unwrap();
        assert_eq!(
            again.open(&a.seal("s")).unwrap(),
            "s",
            "stable for one salt"
        );
        assert_eq!(stretch(PASS, &salt), stretch(PASS, &salt));
        let other_salt = KeyBox::from_passphrase(PASS, &[8u8; 16]).unwrap();
        assert_ne!(stretch(PASS, &salt), stretch(PASS, &[8u8; 16]));
        assert!(matches!(
            other_salt.open(&a.seal("s")),
            Err(SecretError::WrongKey)
        ));
        // Not the old single SHA-256: a box without the fallback cannot open it.
        let sha: [u8; 32] = sha2::Sha256::digest(PASS.as_bytes()).into();
        assert_ne!(stretch(PASS, &salt), sha);
        assert!(KeyBox::new(sha).open(&a.seal("s")).is_err());
    }

    #[test]
    fn values_sealed_under_the_legacy_passphrase_key_still_open() {
        let old = KeyBox::from_text(PASS);
        let sealed = old.seal("legacy");
        let new = KeyBox::from_passphrase(PASS, &[3; 16]).unwrap();
        assert_eq!(new.open(&sealed).unwrap(), "legacy");
        // New values are sealed under the Argon2id key only.
        assert!(matches!(
            old.open(&new.seal("fresh")),
            Err(SecretError::WrongKey)
        ));
        // Another passphrase's legacy key does not open it.
        let other = KeyBox::from_passphrase("a different passphrase", &[3; 16]).unwrap();
        assert!(matches!(other.open(&sealed), Err(SecretError::WrongKey)));
    }

    #[test]
    fn short_passphrases_are_refused() {
        let err = KeyBox::from_passphrase("  short pass ", &[0; 16]).unwrap_err();
        assert!(
            matches!(err, SecretError::ShortPassphrase { chars: 10 }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("at least 12"), "{msg}");
        assert!(msg.contains("openssl rand -hex 32"), "{msg}");
        assert!(KeyBox::from_passphrase("twelve chars", &[0; 16]).is_ok());
    }

    #[tokio::test]
    async fn the_salt_is_stored_once_per_database() {
        let store = crate::store::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap();
        let first = KeyBox::from_key_or_passphrase(PASS, &store).await.unwrap();
        let salt = passphrase_salt(&store).await.unwrap();
        let (stored, created) = store.ensure_setting(SALT_SETTING, "x").await.unwrap();
        assert!(!created);
        assert_eq!(stored, hex::encode(salt));
        let second = KeyBox::from_key_or_passphrase(PASS, &store).await.unwrap();
        assert_eq!(second.open(&first.seal("s")).unwrap(), "s");

        // A raw key needs no salt; a short passphrase is refused before any is stored.
        let fresh = crate::store::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap();
        let raw = KeyBox::from_key_or_passphrase(&"ab".repeat(32), &fresh)
            .await
            .unwrap();
        assert_eq!(KeyBox::new([0xab; 32]).open(&raw.seal("r")).unwrap(), "r");
        assert!(matches!(
            KeyBox::from_key_or_passphrase("too short", &fresh).await,
            Err(SecretError::ShortPassphrase { .. })
        ));
        let (_, created) = fresh.ensure_setting(SALT_SETTING, "x").await.unwrap();
        assert!(created, "no salt was stored");
        fresh.set_setting(SALT_SETTING, "not hex").await.unwrap();
        assert!(matches!(
            KeyBox::from_key_or_passphrase(PASS, &fresh).await,
            Err(SecretError::BadSalt)
        ));
    }

    #[test]
    fn the_key_file_is_created_once_with_mode_0600() {
        let dir = temp_dir();
        let path = dir.join("secret.key");
        let first = KeyBox::from_file(&path).unwrap();
        let second = KeyBox::from_file(&path).unwrap();
        assert_eq!(second.open(&first.seal("s")).unwrap(), "s");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
            // A key file others can read is made owner-only.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            KeyBox::from_file(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn empty_or_garbled_key_files_are_refused() {
        let dir = temp_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        for (content, says) in [
            ("", "is empty"),
            (" \n\t\n", "is empty"),
            ("abcd", "does not hold a 32-byte key"),
            ("0".repeat(63).as_str(), "does not hold a 32-byte key"),
            (PASS, "WEFT_SECRET_KEY"),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = KeyBox::from_file(&path).unwrap_err();
            assert!(matches!(err, SecretError::BadKeyFile { .. }), "{err:?}");
            let msg = err.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains(says), "{content:?}: {msg}");
            assert!(msg.contains("openssl rand -hex 32"), "{msg}");
        }
        std::fs::write(&path, format!("{}\n", "11".repeat(32))).unwrap();
        let k = KeyBox::from_file(&path).unwrap();
        assert_eq!(KeyBox::new([0x11; 32]).open(&k.seal("k")).unwrap(), "k");
        let _ = std::fs::remove_dir_all(dir);
    }
}
