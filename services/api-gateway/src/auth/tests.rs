use super::*;
use serde_json::json;

const SECRET: &str = "test-secret-at-least-16-bytes";

fn sign(alg: Algorithm, secret: &str, claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes())).expect("sign")
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[test]
fn issued_tokens_verify_and_name_the_caller() {
    let t = issue_token(SECRET, "dev", "alice", 60).expect("issue");
    assert_eq!(verify(SECRET, &t, 0).expect("valid"), Caller::new("dev", "alice"));
}

#[test]
fn tenant_and_user_fall_back_to_plain_claims() {
    let now = now_s();
    let t = sign(Algorithm::HS256, SECRET, &json!({"tenant": "t1", "sub": "bob", "nbf": now, "exp": now + 60}));
    assert_eq!(verify(SECRET, &t, 0).expect("valid"), Caller::new("t1", "bob"));
    let t = sign(Algorithm::HS256, SECRET, &json!({"sub": "bob", "nbf": now, "exp": now + 60}));
    assert_eq!(verify(SECRET, &t, 0), Err(AuthError::MissingIdentity));
}

#[test]
fn bad_tokens_are_refused_with_the_reason() {
    let now = now_s();
    let good = json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "nbf": now, "exp": now + 60});
    let expired = json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "nbf": now - 100, "exp": now - 50});
    let future = json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "nbf": now + 100, "exp": now + 200});
    let no_nbf = json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "exp": now + 60});
    let no_exp = json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "nbf": now});
    let none_alg = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(good.to_string().as_bytes()));
    let cases = [
        (sign(Algorithm::HS256, "another-secret-entirely", &good), AuthError::BadSignature),
        (sign(Algorithm::HS512, SECRET, &good), AuthError::WrongAlgorithm),
        (sign(Algorithm::HS256, SECRET, &expired), AuthError::Expired),
        (sign(Algorithm::HS256, SECRET, &future), AuthError::NotYetValid),
        (sign(Algorithm::HS256, SECRET, &no_nbf), AuthError::MissingClaim("nbf".into())),
        (sign(Algorithm::HS256, SECRET, &no_exp), AuthError::MissingClaim("exp".into())),
        (none_alg, AuthError::BadHeader),
        ("not-a-token".to_string(), AuthError::Malformed),
    ];
    for (token, want) in cases {
        let got = verify(SECRET, &token, 5).expect_err("must be refused");
        assert_eq!(got, want);
        assert!(!got.to_string().contains(&token), "message must not echo the token");
    }
}

#[test]
fn leeway_tolerates_small_clock_skew() {
    let now = now_s();
    let t = sign(
        Algorithm::HS256,
        SECRET,
        &json!({"tapis/tenant_id": "d", "tapis/username": "u", "nbf": now + 3, "exp": now + 60}),
    );
    assert!(verify(SECRET, &t, 5).is_ok());
    assert_eq!(verify(SECRET, &t, 0), Err(AuthError::NotYetValid));
}

#[test]
fn token_is_read_from_either_header() {
    let mut h = HeaderMap::new();
    assert_eq!(token_from_headers(&h), None);
    h.insert("authorization", "Bearer abc".parse().expect("header"));
    assert_eq!(token_from_headers(&h), Some("abc"));
    h.insert("x-tapis-token", "xyz".parse().expect("header"));
    assert_eq!(token_from_headers(&h), Some("xyz"));
}

fn config(admins: &str) -> corral_config::Config {
    let toml = format!("[auth]\njwt_secret = \"{SECRET}\"\nleeway_s = 0\nadmin_users = \"{admins}\"\n");
    corral_config::Config::from_toml_over_defaults(&toml).expect("config")
}

#[test]
fn cached_authentication_answers_as_the_uncached_one() {
    let cfg = config("dev:alice");
    let cache = TokenCache::default();
    for user in ["alice", "bob"] {
        let t = issue_token(SECRET, "dev", user, 60).expect("issue");
        let (fresh, _) = authenticate_until(&cfg, &t).expect("valid");
        assert_eq!(authenticate_cached(&cfg, &cache, &t).expect("first, verified"), fresh);
        assert_eq!(authenticate_cached(&cfg, &cache, &t).expect("second, remembered"), fresh);
        assert_eq!(fresh.admin, user == "alice");
    }
    assert_eq!(cache.remembered(), 2);
}

#[test]
fn refused_tokens_are_never_remembered() {
    let cfg = config("");
    let cache = TokenCache::default();
    let now = now_s();
    let claims = json!({"tapis/tenant_id": "dev", "tapis/username": "alice", "nbf": now, "exp": now + 60});
    let good = sign(Algorithm::HS256, SECRET, &claims);
    let forged = sign(Algorithm::HS256, "another-secret-entirely", &claims);
    assert!(authenticate_cached(&cfg, &cache, &good).is_ok());
    // Same claims, wrong signature: a different text, so verified (and refused) afresh.
    for _ in 0..2 {
        assert_eq!(authenticate_cached(&cfg, &cache, &forged), Err(AuthError::BadSignature));
    }
    let expired = sign(Algorithm::HS256, SECRET, &json!({"sub": "a", "tenant": "d", "nbf": now - 9, "exp": now - 5}));
    assert_eq!(authenticate_cached(&cfg, &cache, &expired), Err(AuthError::Expired));
    assert_eq!(cache.remembered(), 1);
}

#[test]
fn remembered_tokens_stop_working_when_they_expire() {
    let cache = TokenCache::default();
    let caller = Caller::new("dev", "alice");
    cache.put("tok", &caller, 1_000, 900, 0);
    assert_eq!(cache.get("tok", 1_000, 0), Some(caller.clone()));
    assert_eq!(cache.get("tok", 1_001, 0), None, "expired: gone");
    assert_eq!(cache.remembered(), 0);
    cache.put("tok", &caller, 1_000, 900, 5);
    assert_eq!(cache.get("tok", 1_005, 5), Some(caller), "within the leeway");
    assert_eq!(cache.get("tok", 1_006, 5), None);
    assert_eq!(cache.get("other", 900, 5), None);
}
