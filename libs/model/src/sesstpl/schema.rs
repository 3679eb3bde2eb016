//! The taskTemplate schema: which keys exist where, their aliases, and how each value is read.
//! A document or an override is read into a [`Draft`]; nothing here needs the whole picture.

use super::git::{CredentialRef, check_branch, check_repository, normalise_commit};
use super::model::{Kind, SessionType};
use super::names::{check_env_name, check_volume_name, default_mount_path, normalise_path};
use super::node::Node;
use super::quantity::{Cpu, Mem};
use super::walk::{Cx, KeySpec, MapDraft, Mode, Section, Slot, Sub, bounded_text, line, text};

/// Longest script, command or environment value, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Longest accepted `batch_timeout`: one year, in seconds.
pub const MAX_BATCH_TIMEOUT: u32 = 365 * 24 * 3600;

const ROOT: &[KeySpec] = &[("api_version", &["apiVersion"]), ("kind", &[]), ("metadata", &[]), ("spec", &[])];
const METADATA: &[KeySpec] = &[("name", &[]), ("tag", &[])];
const SPEC: &[KeySpec] = &[
    ("session_type", &["type", "sessionType"]),
    ("kernel", &[]),
    ("mounts", &[]),
    ("resources", &[]),
    ("batch_timeout", &["batchTimeout"]),
];
const KERNEL: &[KeySpec] = &[("image", &[]), ("environ", &[]), ("run", &[]), ("git", &[])];
// `stratup` is the misspelling in Backend.AI's published grammar; documents copied from it work.
const RUN: &[KeySpec] = &[("bootstrap", &[]), ("startup_command", &["startup", "startupCommand", "stratup"])];
const GIT: &[KeySpec] = &[
    ("repository", &[]),
    ("commit", &[]),
    ("branch", &[]),
    ("credential", &[]),
    ("destination_dir", &["destinationDir"]),
];
const RESOURCES: &[KeySpec] = &[("cpu", &[]), ("mem", &[]), ("gpus", &["cuda.device"])];

/// Everything a document or override says, field by field.
#[derive(Clone)]
pub(super) struct Draft {
    pub api_version: Slot<String>,
    pub kind: Slot<Kind>,
    pub name: Slot<String>,
    pub tag: Slot<String>,
    pub session_type: Slot<SessionType>,
    pub batch_timeout: Slot<u32>,
    pub image: Slot<String>,
    pub environ: MapDraft<String>,
    pub bootstrap: Slot<String>,
    pub startup_command: Slot<String>,
    pub git: Slot<GitDraft>,
    /// Volume → mount path (`None`: the default path).
    pub mounts: MapDraft<Option<String>>,
    pub cpu: Slot<Cpu>,
    pub mem: Slot<Mem>,
    pub gpus: Slot<u32>,
}

#[derive(Clone)]
pub(super) struct GitDraft {
    pub repository: Slot<String>,
    pub commit: Slot<String>,
    pub branch: Slot<String>,
    pub credential: Slot<CredentialRef>,
    pub destination_dir: Slot<String>,
}

impl Default for Draft {
    fn default() -> Self {
        Self {
            api_version: Slot::Keep,
            kind: Slot::Keep,
            name: Slot::Keep,
            tag: Slot::Keep,
            session_type: Slot::Keep,
            batch_timeout: Slot::Keep,
            image: Slot::Keep,
            environ: MapDraft::default(),
            bootstrap: Slot::Keep,
            startup_command: Slot::Keep,
            git: Slot::Keep,
            mounts: MapDraft::default(),
            cpu: Slot::Keep,
            mem: Slot::Keep,
            gpus: Slot::Keep,
        }
    }
}

/// Reads a whole tree (document or override) into a draft, recording every problem in `cx`.
pub(super) fn read(cx: &mut Cx, root: &Node) -> Draft {
    let mut d = Draft::default();
    let entries = match root {
        Node::Mapping(entries) => entries,
        Node::Null if cx.mode == Mode::Override => return d,
        other => {
            cx.error(super::node::DOCUMENT, format!("must be a mapping, not {}", other.kind()));
            // One error says it all; the required fields are not "missing" on top of it.
            (d.api_version, d.kind, d.name, d.image) = (Slot::Invalid, Slot::Invalid, Slot::Invalid, Slot::Invalid);
            return d;
        }
    };
    let top = cx.section("", entries, ROOT);
    let fixed = cx.mode == Mode::Override;
    if fixed && let Some((path, _)) = top.get("api_version") {
        cx.error(path, "is fixed by the template and cannot be overridden");
    } else {
        d.api_version = cx.scalar(top.get("api_version"), true, |n| line(n, 64));
    }
    if fixed && let Some((path, _)) = top.get("kind") {
        cx.error(path, "is fixed by the template and cannot be overridden");
    } else {
        d.kind = cx.scalar(top.get("kind"), true, kind);
    }
    match cx.sub(top.get("metadata"), METADATA) {
        Sub::Map(m) => read_metadata(cx, &m, &mut d),
        Sub::Null | Sub::Invalid => {
            required_section(cx, top.get("metadata"));
            d.name = Slot::Invalid;
        }
        Sub::Absent => {}
    }
    match cx.sub(top.get("spec"), SPEC) {
        Sub::Map(s) => read_spec(cx, &s, &mut d),
        Sub::Null | Sub::Invalid => {
            required_section(cx, top.get("spec"));
            d.image = Slot::Invalid;
        }
        Sub::Absent => {}
    }
    d
}

/// A required section given as `null`: missing in a document, not removable in an override.
fn required_section(cx: &mut Cx, field: Option<(&str, &Node)>) {
    if let Some((path, Node::Null)) = field {
        let message = match cx.mode {
            Mode::Document => "is required",
            Mode::Override => "is required and cannot be removed",
        };
        cx.error(path, message);
    }
}

fn read_metadata(cx: &mut Cx, m: &Section<'_>, d: &mut Draft) {
    if cx.mode == Mode::Override
        && let Some((path, _)) = m.get("name")
    {
        cx.error(path, "is fixed by the template and cannot be overridden");
    } else {
        d.name = cx.scalar(m.get("name"), true, |n| line(n, 128));
    }
    d.tag = cx.scalar(m.get("tag"), false, |n| line(n, 255));
}

fn read_spec(cx: &mut Cx, s: &Section<'_>, d: &mut Draft) {
    d.session_type = cx.scalar(s.get("session_type"), false, session_type);
    d.batch_timeout = cx.scalar(s.get("batch_timeout"), false, batch_timeout);
    match cx.sub(s.get("kernel"), KERNEL) {
        Sub::Map(k) => read_kernel(cx, &k, d),
        Sub::Null | Sub::Invalid => {
            required_section(cx, s.get("kernel"));
            d.image = Slot::Invalid;
        }
        Sub::Absent => {}
    }
    d.mounts = cx.map(s.get("mounts"), check_volume_name, |name, node| match node {
        Node::Null => Ok(None),
        node => {
            let path = text(node)?;
            if path.is_empty() {
                return Ok(None);
            }
            let path = normalise_path(path)?;
            Ok((path != default_mount_path(name)).then_some(path))
        }
    });
    match cx.sub(s.get("resources"), RESOURCES) {
        Sub::Map(r) => {
            d.cpu = cx.scalar(r.get("cpu"), false, |n| Cpu::parse(quantity_text(n)?));
            d.mem = cx.scalar(r.get("mem"), false, |n| Mem::parse(quantity_text(n)?));
            d.gpus = cx.scalar(r.get("gpus"), false, gpus);
        }
        Sub::Null if cx.mode == Mode::Override => {
            (d.cpu, d.mem, d.gpus) = (Slot::Clear, Slot::Clear, Slot::Clear);
        }
        Sub::Null | Sub::Invalid | Sub::Absent => {}
    }
}

fn read_kernel(cx: &mut Cx, k: &Section<'_>, d: &mut Draft) {
    d.image = cx.scalar(k.get("image"), true, image);
    d.environ = cx.map(k.get("environ"), check_env_name, |_, n| bounded_text(n, MAX_TEXT_BYTES));
    match cx.sub(k.get("run"), RUN) {
        Sub::Map(r) => {
            d.bootstrap = cx.scalar(r.get("bootstrap"), false, script);
            d.startup_command = cx.scalar(r.get("startup_command"), false, script);
        }
        Sub::Null if cx.mode == Mode::Override => (d.bootstrap, d.startup_command) = (Slot::Clear, Slot::Clear),
        Sub::Null | Sub::Invalid | Sub::Absent => {}
    }
    d.git = match cx.sub(k.get("git"), GIT) {
        Sub::Map(g) => Slot::Set(read_git(cx, &g)),
        Sub::Null if cx.mode == Mode::Override => Slot::Clear,
        Sub::Invalid => Slot::Invalid,
        Sub::Null | Sub::Absent => Slot::Keep,
    };
}

fn read_git(cx: &mut Cx, g: &Section<'_>) -> GitDraft {
    GitDraft {
        repository: cx.scalar(g.get("repository"), true, |n| {
            let r = text(n)?;
            check_repository(r)?;
            Ok(r.to_string())
        }),
        commit: cx.scalar(g.get("commit"), false, |n| normalise_commit(text(n)?)),
        branch: cx.scalar(g.get("branch"), false, |n| {
            let b = text(n)?;
            check_branch(b)?;
            Ok(b.to_string())
        }),
        credential: cx.scalar(g.get("credential"), false, credential),
        destination_dir: cx.scalar(g.get("destination_dir"), false, |n| normalise_path(text(n)?)),
    }
}

fn kind(node: &Node) -> Result<Kind, String> {
    match text(node)? {
        "taskTemplate" | "task_template" => Ok(Kind::TaskTemplate),
        "clusterTemplate" | "cluster_template" => Err("cluster templates are not supported (taskTemplate only)".into()),
        _ => Err("must be 'taskTemplate' or 'task_template'".into()),
    }
}

fn session_type(node: &Node) -> Result<SessionType, String> {
    match text(node)? {
        "interactive" => Ok(SessionType::Interactive),
        "batch" => Ok(SessionType::Batch),
        other @ ("inference" | "system") => {
            Err(format!("Backend.AI's '{other}' session type is not supported (interactive or batch)"))
        }
        _ => Err("must be 'interactive' or 'batch'".into()),
    }
}

fn batch_timeout(node: &Node) -> Result<u32, String> {
    let Node::Number(n) = node else {
        return Err(format!("must be a whole number of seconds, not {}", node.kind()));
    };
    match n.parse::<u64>() {
        Ok(0) => Err("must be at least 1 second; leave it out for no limit".into()),
        Ok(v) if v <= u64::from(MAX_BATCH_TIMEOUT) => u32::try_from(v).map_err(|_| "is too large".into()),
        Ok(_) => Err(format!("must be at most {MAX_BATCH_TIMEOUT} seconds (one year)")),
        Err(_) if n.starts_with('-') => Err("must not be negative".into()),
        Err(_) => Err("must be a whole number of seconds".into()),
    }
}

fn image(node: &Node) -> Result<String, String> {
    let image = line(node, 255)?;
    if image.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace".into());
    }
    if image.matches(':').count() > 1 {
        return Err("may contain at most one ':' (name:tag)".into());
    }
    Ok(image)
}

fn script(node: &Node) -> Result<String, String> {
    let s = bounded_text(node, MAX_TEXT_BYTES)?;
    if s.trim().is_empty() {
        return Err("must not be empty; leave it out instead".into());
    }
    Ok(s)
}

fn credential(node: &Node) -> Result<CredentialRef, String> {
    match node {
        Node::String(s) => CredentialRef::parse(s),
        Node::Mapping(_) => Err("literal credentials (username/password) are not accepted; store them as a secret \
                                and give its name (e.g. credential: my-git-token)"
            .into()),
        other => Err(format!("must be the name of a stored secret, not {}", other.kind())),
    }
}

/// Resource values may be strings (`'2'`, `4g`) or plain numbers (`2`, `0.5`).
fn quantity_text(node: &Node) -> Result<&str, String> {
    match node {
        Node::String(s) | Node::Number(s) => Ok(s),
        other => Err(format!("must be a quantity such as \"2\" or \"4g\", not {}", other.kind())),
    }
}

fn gpus(node: &Node) -> Result<u32, String> {
    let s = quantity_text(node)?;
    if s.starts_with('-') {
        return Err("must not be negative".into());
    }
    if s.contains('.') {
        return Err("must be a whole number of devices (fractional GPU shares are not supported)".into());
    }
    s.parse::<u32>().map_err(|_| "must be a whole number of devices".into())
}
