//! Environment overrides.

use crate::ConfigError;

/// Short names for the settings most often overridden.
pub const ENV_SHORTCUTS: &[(&str, &str, &str)] = &[
    ("CORRAL_AMQP_URL", "amqp", "url"),
    ("CORRAL_REDIS_URL", "redis", "url"),
    ("CORRAL_HTTP_ADDR", "http", "addr"),
    ("CORRAL_RUNTIME", "runtime", "kind"),
    ("CORRAL_JWT_SECRET", "auth", "jwt_secret"),
    ("CORRAL_ADMIN_USERS", "auth", "admin_users"),
    ("CORRAL_PUBLIC_URL", "http", "public_url"),
    ("CORRAL_SECRETS_KEY", "secrets", "key"),
];

pub(crate) fn apply(table: &mut toml::Table, vars: &[(String, String)]) -> Result<(), ConfigError> {
    for (var, value) in vars {
        if let Some((_, section, key)) = ENV_SHORTCUTS.iter().find(|(name, _, _)| name == var) {
            set(table, var, section, key, toml::Value::String(value.clone()))?;
        } else if let Some(path) = var.strip_prefix("CORRAL__") {
            let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
            let [section, key] = parts.as_slice() else {
                return Err(ConfigError::Env { var: var.clone(), detail: "expected CORRAL__<SECTION>__<KEY>".into() });
            };
            set(table, var, section, key, typed(value))?;
        }
    }
    Ok(())
}

/// Numbers and booleans keep their type; everything else is a string.
fn typed(raw: &str) -> toml::Value {
    if let Ok(i) = raw.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_string()),
    }
}

fn set(table: &mut toml::Table, var: &str, section: &str, key: &str, value: toml::Value) -> Result<(), ConfigError> {
    let Some(toml::Value::Table(sec)) = table.get_mut(section) else {
        return Err(ConfigError::Env { var: var.to_string(), detail: format!("unknown section '{section}'") });
    };
    if !sec.contains_key(key) {
        return Err(ConfigError::Env { var: var.to_string(), detail: format!("unknown setting '{section}.{key}'") });
    }
    sec.insert(key.to_string(), value);
    Ok(())
}
