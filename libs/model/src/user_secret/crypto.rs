//! Encryption at rest of named secrets' values: ChaCha20-Poly1305 (an AEAD) under one
//! deployment-wide 32-byte key, a random 96-bit nonce per write, and associated data naming
//! the owner (tenant, user, secret name), so a ciphertext copied into another owner's record
//! (or under another name) fails to open instead of handing that owner the value.
//!
//! Pure functions: the nonce is a parameter ([`seal`]); [`random_nonce`] takes one from the
//! operating system's CSPRNG (through `rand`'s thread generator) for real writes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

/// Version of the sealed form written today.
pub const SEALED_VERSION: u32 = 1;
/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// Bytes of a nonce (96 bits).
pub const NONCE_LEN: usize = 12;
/// HKDF-SHA256 context ("info") of the key derived from `auth.jwt_secret` when no dedicated
/// key is configured. Fixed: every service sharing the configuration derives the same key, and
/// changing it would make every stored secret unreadable.
pub const DERIVE_CONTEXT: &[u8] = b"corral user_secret encryption key v1";
/// Domain separation of the associated data, in case the key ever serves another purpose.
const AD_LABEL: &[u8] = b"corral/user_secret/v1";

/// The key secrets are sealed with. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsKey([u8; KEY_LEN]);

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretsKey(hidden)")
    }
}

/// Why a configured key is unusable. Never quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("must be 32 bytes written as 64 hex digits or in base64 (got {0} bytes)")]
    WrongLength(usize),
    #[error("must be 32 bytes written as 64 hex digits or in base64 (it is neither)")]
    NotEncoded,
}

impl SecretsKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses a configured key: 64 hex digits, or base64 (standard or URL-safe alphabet,
    /// padding optional) of exactly 32 bytes. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let bytes = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            decode_hex(text)
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
                .ok_or(KeyError::NotEncoded)?
        };
        let len = bytes.len();
        <[u8; KEY_LEN]>::try_from(bytes).map(Self).map_err(|_| KeyError::WrongLength(len))
    }

    /// The key derived from another secret (the token signing key) with HKDF-SHA256 and
    /// [`DERIVE_CONTEXT`]: deterministic, so every service derives the same one.
    pub fn derive(master: &[u8]) -> Self {
        let mut out = [0u8; KEY_LEN];
        // expand fails only when asked for more than 255 hash lengths; 32 bytes is one.
        let expanded = hkdf::Hkdf::<sha2::Sha256>::new(None, master).expand(DERIVE_CONTEXT, &mut out);
        debug_assert!(expanded.is_ok());
        Self(out)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(&self.0))
    }
}

/// Pairs of hex digits to bytes; the caller checked that every character is one.
fn decode_hex(text: &str) -> Vec<u8> {
    let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
    text.as_bytes().chunks(2).map(|p| (digit(p[0]) << 4) | digit(p[1])).collect()
}

/// Whose secret a ciphertext is: bound into it as associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner<'a> {
    pub tenant: &'a str,
    pub user: &'a str,
    pub name: &'a str,
}

impl Owner<'_> {
    /// Label, then each part with its length in front, so no two owners encode alike (even
    /// when a part contains a separator another encoding would use).
    fn associated_data(&self) -> Vec<u8> {
        let mut ad = AD_LABEL.to_vec();
        for part in [self.tenant, self.user, self.name] {
            ad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            ad.extend_from_slice(part.as_bytes());
        }
        ad
    }
}

/// The stored form of a sealed value: `{"v":1,"nonce":b64,"ct":b64}` (ciphertext with its tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub v: u32,
    pub nonce: String,
    pub ct: String,
}

/// Why a sealed value does not open. None of them carries the value or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("unknown sealed format version {0}")]
    UnknownVersion(u32),
    #[error("malformed sealed value: {0}")]
    Malformed(&'static str),
    /// Wrong key, altered ciphertext or nonce, or another owner's record: AEAD cannot tell
    /// these apart, by design.
    #[error("authentication failed")]
    Rejected,
}

/// The cipher refused to encrypt (the value is beyond its length limit).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the value cannot be encrypted")]
pub struct SealError;

/// A fresh nonce from a CSPRNG (`rand`'s thread generator, seeded by the operating system).
pub fn random_nonce() -> [u8; NONCE_LEN] {
    rand::random()
}

/// Seals `value` for `owner` under `key` with `nonce` (use [`random_nonce`]; never reuse one
/// under the same key).
/// Fails only for values beyond the cipher's limit (256 GiB), far above what is accepted.
pub fn seal(key: &SecretsKey, owner: Owner<'_>, value: &str, nonce: [u8; NONCE_LEN]) -> Result<Sealed, SealError> {
    let ad = owner.associated_data();
    let ct = key
        .cipher()
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: value.as_bytes(), aad: &ad })
        .map_err(|_| SealError)?;
    Ok(Sealed { v: SEALED_VERSION, nonce: STANDARD.encode(nonce), ct: STANDARD.encode(ct) })
}

/// Opens what [`seal`] made for the same `owner` under the same `key`.
pub fn open(key: &SecretsKey, owner: Owner<'_>, sealed: &Sealed) -> Result<String, OpenError> {
    if sealed.v != SEALED_VERSION {
        return Err(OpenError::UnknownVersion(sealed.v));
    }
    let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| OpenError::Malformed("nonce is not base64"))?;
    if nonce.len() != NONCE_LEN {
        return Err(OpenError::Malformed("nonce is not 12 bytes"));
    }
    let ct = STANDARD.decode(&sealed.ct).map_err(|_| OpenError::Malformed("ciphertext is not base64"))?;
    let ad = owner.associated_data();
    let plain = key
        .cipher()
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: &ad })
        .map_err(|_| OpenError::Rejected)?;
    String::from_utf8(plain).map_err(|_| OpenError::Malformed("value is not UTF-8"))
}

#[cfg(test)]
mod tests;
