use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;

use super::*;

const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

fn key(byte: u8) -> SecretsKey {
    SecretsKey::from_bytes([byte; KEY_LEN])
}

fn owner<'a>(tenant: &'a str, user: &'a str, name: &'a str) -> Owner<'a> {
    Owner { tenant, user, name }
}

/// `sealed` with its base64 field `field` decoded, altered by `f` and encoded again.
fn altered(sealed: &Sealed, ct: bool, f: impl Fn(&mut Vec<u8>)) -> Sealed {
    let mut out = sealed.clone();
    let field = if ct { &mut out.ct } else { &mut out.nonce };
    let mut bytes = STANDARD.decode(&*field).expect("base64");
    f(&mut bytes);
    *field = STANDARD.encode(bytes);
    out
}

#[test]
fn open_table() {
    let alice = owner("acme", "alice", "gh");
    let sealed = seal(&key(1), alice, "tok-123", NONCE).expect("seal");
    let flip_ct = altered(&sealed, true, |b| b[0] ^= 1);
    let flip_tag = altered(&sealed, true, |b| {
        let last = b.len() - 1;
        b[last] ^= 0x80;
    });
    let cut_ct = altered(&sealed, true, |b| b.truncate(b.len() - 1));
    let flip_nonce = altered(&sealed, false, |b| b[3] ^= 1);
    let short_nonce = altered(&sealed, false, |b| b.truncate(8));
    let v2 = Sealed { v: 2, ..sealed.clone() };
    let not_b64 = Sealed { ct: "%%%".into(), ..sealed.clone() };
    type Row<'a> = (&'a str, SecretsKey, Owner<'a>, &'a Sealed, Result<&'a str, OpenError>);
    let rows: Vec<Row<'_>> = vec![
        ("round trip", key(1), alice, &sealed, Ok("tok-123")),
        ("wrong key", key(2), alice, &sealed, Err(OpenError::Rejected)),
        ("tampered ciphertext", key(1), alice, &flip_ct, Err(OpenError::Rejected)),
        ("tampered tag", key(1), alice, &flip_tag, Err(OpenError::Rejected)),
        ("truncated ciphertext", key(1), alice, &cut_ct, Err(OpenError::Rejected)),
        ("tampered nonce", key(1), alice, &flip_nonce, Err(OpenError::Rejected)),
        ("another tenant", key(1), owner("other", "alice", "gh"), &sealed, Err(OpenError::Rejected)),
        ("another user", key(1), owner("acme", "bob", "gh"), &sealed, Err(OpenError::Rejected)),
        ("another name", key(1), owner("acme", "alice", "gh2"), &sealed, Err(OpenError::Rejected)),
        // Moving bytes between the parts must not give the same associated data.
        ("parts shifted", key(1), owner("acmea", "lice", "gh"), &sealed, Err(OpenError::Rejected)),
        ("unknown version", key(1), alice, &v2, Err(OpenError::UnknownVersion(2))),
        ("short nonce", key(1), alice, &short_nonce, Err(OpenError::Malformed("nonce is not 12 bytes"))),
        ("ciphertext not base64", key(1), alice, &not_b64, Err(OpenError::Malformed("ciphertext is not base64"))),
    ];
    for (what, k, who, s, want) in rows {
        assert_eq!(open(&k, who, s), want.map(str::to_string), "{what}");
    }
}

#[test]
fn sealed_form_is_versioned_and_holds_no_plaintext() {
    let sealed = seal(&key(9), owner("t", "u", "n"), "plain-value-xyz", NONCE).expect("seal");
    let json = serde_json::to_value(&sealed).expect("json");
    assert_eq!(json["v"], 1);
    assert_eq!(STANDARD.decode(json["nonce"].as_str().expect("nonce")).expect("b64"), NONCE);
    let ct = STANDARD.decode(json["ct"].as_str().expect("ct")).expect("b64");
    assert_eq!(ct.len(), "plain-value-xyz".len() + 16, "ciphertext plus a 16-byte tag");
    assert!(!json.to_string().contains("plain-value"), "{json}");
    // Same inputs, same output (the nonce is the only randomness); another nonce, another ct.
    assert_eq!(seal(&key(9), owner("t", "u", "n"), "plain-value-xyz", NONCE).expect("seal"), sealed);
    let other = seal(&key(9), owner("t", "u", "n"), "plain-value-xyz", [8; NONCE_LEN]).expect("seal");
    assert_ne!(other.ct, sealed.ct);
}

#[test]
fn random_nonces_differ() {
    let a = random_nonce();
    let b = random_nonce();
    assert_ne!(a, b, "two 96-bit random nonces collided");
}

#[test]
fn key_parse_table() {
    let bytes: [u8; KEY_LEN] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(250));
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let b64 = STANDARD.encode(bytes);
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let rows: Vec<(&str, String, Result<SecretsKey, KeyError>)> = vec![
        ("hex", hex.clone(), Ok(SecretsKey::from_bytes(bytes))),
        ("hex upper case", hex.to_uppercase(), Ok(SecretsKey::from_bytes(bytes))),
        ("base64", b64.clone(), Ok(SecretsKey::from_bytes(bytes))),
        ("base64 no padding", b64.trim_end_matches('=').to_string(), Ok(SecretsKey::from_bytes(bytes))),
        ("base64 url-safe", url, Ok(SecretsKey::from_bytes(bytes))),
        ("surrounding space", format!(" {hex}\n"), Ok(SecretsKey::from_bytes(bytes))),
        ("16 bytes", STANDARD.encode([1u8; 16]), Err(KeyError::WrongLength(16))),
        ("33 bytes", STANDARD.encode([1u8; 33]), Err(KeyError::WrongLength(33))),
        ("neither", "not a key at all!".to_string(), Err(KeyError::NotEncoded)),
        ("empty", String::new(), Err(KeyError::WrongLength(0))),
    ];
    for (what, text, want) in rows {
        let got = SecretsKey::parse(&text);
        assert_eq!(got, want, "{what}");
        if let Err(e) = got {
            assert!(text.trim().is_empty() || !e.to_string().contains(text.trim()), "{what}: error quotes the key");
        }
    }
    assert!(SecretsKey::parse(&hex[..62]).is_err(), "31 bytes of hex");
}

#[test]
fn derived_keys_are_stable_and_distinct() {
    let a = SecretsKey::derive(b"jwt-secret-one-0123456789");
    assert_eq!(a, SecretsKey::derive(b"jwt-secret-one-0123456789"), "deterministic");
    assert_ne!(a, SecretsKey::derive(b"jwt-secret-two-0123456789"));
    // Sealed under one derivation, it opens under the same derivation made elsewhere.
    let sealed = seal(&a, owner("t", "u", "n"), "v", NONCE).expect("seal");
    let b = SecretsKey::derive(b"jwt-secret-one-0123456789");
    assert_eq!(open(&b, owner("t", "u", "n"), &sealed), Ok("v".to_string()));
}

#[test]
fn debug_hides_the_key() {
    let text = format!("{:?}", SecretsKey::from_bytes([0xab; KEY_LEN]));
    assert!(!text.contains("ab") && !text.contains("171"), "{text}");
}

proptest! {
    #[test]
    fn round_trip_and_owner_binding(
        value in "\\PC{0,200}",
        parts in proptest::array::uniform3("[a-z0-9/._-]{0,12}"),
        other in proptest::array::uniform3("[a-z0-9/._-]{0,12}"),
        k in proptest::array::uniform32(any::<u8>()),
        nonce in proptest::array::uniform12(any::<u8>()),
    ) {
        let key = SecretsKey::from_bytes(k);
        let who = owner(&parts[0], &parts[1], &parts[2]);
        let sealed = seal(&key, who, &value, nonce).expect("seal");
        prop_assert_eq!(open(&key, who, &sealed), Ok(value.clone()));
        if other != parts {
            prop_assert_eq!(open(&key, owner(&other[0], &other[1], &other[2]), &sealed), Err(OpenError::Rejected));
        }
    }
}
