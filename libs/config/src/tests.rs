use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
}

#[test]
fn defaults_load_and_validate() {
    let cfg = Config::load_with_env(None, &[]).expect("defaults must load");
    assert_eq!(cfg.runtime.kind, RuntimeKind::Docker);
    assert_eq!(cfg.http.addr, "127.0.0.1:8080");
    assert_eq!(cfg.spawner.shards, 16);
}

#[test]
fn shortcuts_and_generic_overrides_apply() {
    let cfg = Config::load_with_env(
        None,
        &env(&[
            ("CORRAL_AMQP_URL", "amqp://u:p@127.0.0.1:5673/v"),
            ("CORRAL_REDIS_URL", "redis://127.0.0.1:6380"),
            ("CORRAL_HTTP_ADDR", "127.0.0.1:9999"),
            ("CORRAL_RUNTIME", "simulated"),
            ("CORRAL_JWT_SECRET", "0123456789abcdef-secret"),
            ("CORRAL__SPAWNER__SHARDS", "32"),
            ("UNRELATED", "x"),
        ]),
    )
    .expect("overrides load");
    assert_eq!(cfg.amqp.url, "amqp://u:p@127.0.0.1:5673/v");
    assert_eq!(cfg.redis.url, "redis://127.0.0.1:6380");
    assert_eq!(cfg.http.addr, "127.0.0.1:9999");
    assert_eq!(cfg.runtime.kind, RuntimeKind::Simulated);
    assert_eq!(cfg.auth.jwt_secret, "0123456789abcdef-secret");
    assert_eq!(cfg.spawner.shards, 32);
}

#[test]
fn unknown_keys_are_errors_everywhere() {
    let err = Config::from_toml_over_defaults("[spawner]\nshardz = 3\n").expect_err("unknown key");
    assert!(err.to_string().contains("shardz"), "{err}");
    let err = Config::from_toml_over_defaults("[nope]\na = 1\n").expect_err("unknown section");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = Config::load_with_env(None, &env(&[("CORRAL__SPAWNER__SHARDZ", "3")])).expect_err("unknown env key");
    assert!(err.to_string().contains("spawner.shardz"), "{err}");
    let err = Config::load_with_env(None, &env(&[("CORRAL__NOPE__X", "3")])).expect_err("unknown env section");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = Config::load_with_env(None, &env(&[("CORRAL_RUNTIME", "kubernetes-ish")])).expect_err("bad enum");
    assert!(err.to_string().contains("kubernetes-ish"), "{err}");
}

#[test]
fn semantic_checks_list_every_problem() {
    let err = Config::from_toml_over_defaults(
        "[amqp]\nmax_kicks_per_message = 0\nkick_interval_ms = 5000\nmax_events_per_message = 0\nmax_observations_per_message = 0\n[spawner]\nshards = 0\nmax_attempts = 0\n[auth]\njwt_secret = \"short\"\n",
    )
    .expect_err("invalid");
    let text = err.to_string();
    for needle in [
        "max_kicks_per_message",
        "kick_interval_ms must be at most 1000",
        "max_events_per_message",
        "max_observations_per_message",
        "shards",
        "max_attempts",
        "jwt_secret",
    ] {
        assert!(text.contains(needle), "{needle} missing from: {text}");
    }
}

#[test]
fn the_secret_never_appears_in_debug_output() {
    let cfg = Config::load_with_env(None, &[]).expect("defaults");
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(&cfg.auth.jwt_secret));
}

/// Every example config shipped in `config/` must load.
#[test]
fn every_shipped_config_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("config dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load_with_env(Some(&path), &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no config files found in {}", dir.display());
}

#[test]
fn secrets_key_is_derived_from_the_token_key_unless_set() {
    let cfg = Config::load_with_env(None, &[]).expect("defaults");
    assert!(cfg.secrets_key_is_derived());
    assert!(cfg.secrets_key_warning().is_some_and(|w| w.contains("secrets.key")));
    let derived = cfg.secrets_key().expect("derived key");
    assert_eq!(derived, SecretsKey::derive(cfg.auth.jwt_secret.as_bytes()));
    // Every service loading the same configuration derives the same key; another token key,
    // another secrets key.
    assert_eq!(Config::load_with_env(None, &[]).expect("defaults").secrets_key().expect("key"), derived);
    let other =
        Config::load_with_env(None, &env(&[("CORRAL_JWT_SECRET", "another-token-key-0123456789")])).expect("other jwt");
    assert_ne!(other.secrets_key().expect("key"), derived);

    let hex = "a1".repeat(32);
    let set = Config::load_with_env(None, &env(&[("CORRAL_SECRETS_KEY", &hex)])).expect("key set");
    assert!(!set.secrets_key_is_derived() && set.secrets_key_warning().is_none());
    assert_eq!(set.secrets_key().expect("key"), SecretsKey::from_bytes([0xa1; 32]));
    let b64 = Config::from_toml_over_defaults("[secrets]\nkey = \"oaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaGhoaE=\"\n")
        .expect("base64 key");
    assert_eq!(b64.secrets_key().expect("key"), SecretsKey::from_bytes([0xa1; 32]));
    let generic = Config::load_with_env(None, &env(&[("CORRAL__SECRETS__KEY", &hex)])).expect("generic env");
    assert_eq!(generic.secrets_key().expect("key"), SecretsKey::from_bytes([0xa1; 32]));
}

#[test]
fn a_bad_secrets_key_is_refused_without_quoting_it() {
    for bad in ["too-short-key-material", "00ff", "Zm9vYmFy"] {
        let err = Config::load_with_env(None, &env(&[("CORRAL_SECRETS_KEY", bad)])).expect_err(bad);
        let text = err.to_string();
        assert!(text.contains("secrets.key") && !text.contains(bad), "{bad}: {text}");
    }
}

#[test]
fn the_secrets_key_never_appears_in_debug_output() {
    let hex = "5e".repeat(32);
    let cfg = Config::load_with_env(None, &env(&[("CORRAL_SECRETS_KEY", &hex)])).expect("key set");
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(&hex) && dbg.contains("Secrets"), "{dbg}");
}
