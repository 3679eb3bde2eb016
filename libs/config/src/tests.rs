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
    let err =
        Config::from_toml_over_defaults("[spawner]\nshards = 0\nmax_attempts = 0\n[auth]\njwt_secret = \"short\"\n")
            .expect_err("invalid");
    let text = err.to_string();
    for needle in ["shards", "max_attempts", "jwt_secret"] {
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
