//! Names and paths inside a session template: environment names, volume names and the
//! container paths volumes and clones go to.

/// The working directory relative paths are taken from, as in Backend.AI.
pub const WORK_DIR: &str = "/home/work";

/// Container paths nothing may be mounted or cloned onto.
const RESERVED_PATHS: &[&str] = &["/proc", "/sys", "/dev"];

/// `[A-Za-z_][A-Za-z0-9_]*`, like the Tapis pod rule for environment variable names.
pub fn check_env_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(()) } else { Err("name must be letters, digits and '_' and not start with a digit".into()) }
}

/// A volume name, which becomes a Tapis volume `source_id`: `[a-z][a-z0-9-]+`, at most 64.
pub fn check_volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = (2..=64).contains(&name.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err("volume name must be 2 to 64 lowercase letters, digits and '-', starting with a letter".into())
    }
}

/// The normalised absolute form of a container path: relative paths are taken under
/// [`WORK_DIR`], repeated and trailing `/` are dropped. `.` and `..` segments, control
/// characters, `/` itself and the reserved system directories are refused.
pub fn normalise_path(text: &str) -> Result<String, String> {
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if text.len() > 1024 {
        return Err("is longer than 1024 characters".into());
    }
    let segments: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err("must not contain '.' or '..' segments".into());
    }
    if segments.is_empty() {
        return Err("must name a directory other than '/'".into());
    }
    let path = if text.starts_with('/') {
        format!("/{}", segments.join("/"))
    } else {
        format!("{WORK_DIR}/{}", segments.join("/"))
    };
    if RESERVED_PATHS.iter().any(|r| path == *r || path.starts_with(&format!("{r}/"))) {
        return Err("is a reserved system directory".into());
    }
    Ok(path)
}

/// Where a volume goes when its mount path is left empty: `/home/work/<name>`.
pub fn default_mount_path(volume: &str) -> String {
    format!("{WORK_DIR}/{volume}")
}
