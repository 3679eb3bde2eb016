//! Layering drafts (template under override) and turning the result into a
//! [`SessionTemplate`], with the checks that need more than one field.

use std::collections::BTreeMap;

use super::model::{Git, Kernel, Metadata, Run, SessionResources, SessionTemplate, SessionType, Spec};
use super::names::default_mount_path;
use super::schema::{Draft, GitDraft};
use super::walk::{Cx, Slot};

impl Draft {
    /// Applies `over` on top of `self`: set or removed fields replace, maps merge per key, and
    /// the git section merges field by field.
    pub fn merge(&mut self, over: Draft) {
        self.api_version.merge(over.api_version);
        self.kind.merge(over.kind);
        self.name.merge(over.name);
        self.tag.merge(over.tag);
        self.session_type.merge(over.session_type);
        self.batch_timeout.merge(over.batch_timeout);
        self.image.merge(over.image);
        self.environ.merge(over.environ);
        self.bootstrap.merge(over.bootstrap);
        self.startup_command.merge(over.startup_command);
        match over.git {
            Slot::Keep => {}
            Slot::Set(o) => match &mut self.git {
                Slot::Set(base) => base.merge(o),
                other => *other = Slot::Set(o),
            },
            other => self.git = other,
        }
        self.mounts.merge(over.mounts);
        self.cpu.merge(over.cpu);
        self.mem.merge(over.mem);
        self.gpus.merge(over.gpus);
    }
}

impl GitDraft {
    fn merge(&mut self, over: GitDraft) {
        self.repository.merge(over.repository);
        self.commit.merge(over.commit);
        self.branch.merge(over.branch);
        self.credential.merge(over.credential);
        self.destination_dir.merge(over.destination_dir);
    }
}

fn required<T>(cx: &mut Cx, slot: Slot<T>, path: &str) -> Option<T> {
    match slot {
        Slot::Set(v) => Some(v),
        Slot::Invalid => None,
        Slot::Keep | Slot::Clear => {
            cx.error(path, "is required");
            None
        }
    }
}

fn optional<T>(slot: Slot<T>) -> Option<T> {
    match slot {
        Slot::Set(v) => Some(v),
        Slot::Keep | Slot::Clear | Slot::Invalid => None,
    }
}

/// The template a draft describes, or `None` when something is missing or wrong (recorded in
/// `cx`, as is every earlier problem: `None` is also returned when `cx` already had errors).
pub(super) fn build(cx: &mut Cx, d: Draft) -> Option<SessionTemplate> {
    let api_version = required(cx, d.api_version, "api_version");
    let kind = required(cx, d.kind, "kind");
    let name = required(cx, d.name, "metadata.name");
    let image = required(cx, d.image, "spec.kernel.image");
    let session_type = match d.session_type {
        Slot::Invalid => None,
        other => Some(optional(other).unwrap_or_default()),
    };
    let startup_invalid = matches!(d.startup_command, Slot::Invalid);
    let timeout_invalid = matches!(d.batch_timeout, Slot::Invalid);
    let run = Run { bootstrap: optional(d.bootstrap), startup_command: optional(d.startup_command) };
    let batch_timeout = optional(d.batch_timeout);
    match session_type {
        Some(SessionType::Batch) if run.startup_command.is_none() && !startup_invalid => {
            cx.error("spec.kernel.run.startup_command", "is required for a batch session");
        }
        Some(SessionType::Interactive) if batch_timeout.is_some() && !timeout_invalid => {
            cx.error("spec.batch_timeout", "only applies to batch sessions");
        }
        _ => {}
    }
    let mounts = d.mounts.resolve();
    check_mount_targets(cx, &mounts);
    let git = match d.git {
        Slot::Set(g) => build_git(cx, g, &mounts),
        _ => None,
    };
    let resources = SessionResources { cpu: optional(d.cpu), mem: optional(d.mem), gpus: optional(d.gpus) };
    if !cx.errors.is_empty() {
        return None;
    }
    Some(SessionTemplate {
        api_version: api_version?,
        kind: kind?,
        metadata: Metadata { name: name?, tag: optional(d.tag) },
        spec: Spec {
            session_type: session_type?,
            kernel: Kernel { image: image?, environ: d.environ.resolve(), run, git },
            mounts,
            resources,
            batch_timeout,
        },
    })
}

/// Two volumes mounted at one path would silently lose one once keyed by path (Tapis).
fn check_mount_targets(cx: &mut Cx, mounts: &BTreeMap<String, Option<String>>) {
    let mut by_target: BTreeMap<String, &str> = BTreeMap::new();
    for (name, target) in mounts {
        let target = target.clone().unwrap_or_else(|| default_mount_path(name));
        match by_target.get(&target) {
            Some(first) => {
                let message = format!("is mounted at {target}, like volume '{first}'");
                cx.error(format!("spec.mounts.{name}"), message);
            }
            None => {
                by_target.insert(target, name);
            }
        }
    }
}

fn build_git(cx: &mut Cx, g: GitDraft, mounts: &BTreeMap<String, Option<String>>) -> Option<Git> {
    let repository = required(cx, g.repository, "spec.kernel.git.repository")?;
    let git = Git {
        repository,
        commit: optional(g.commit),
        branch: optional(g.branch),
        credential: optional(g.credential),
        destination_dir: optional(g.destination_dir),
    };
    let destination = git.destination();
    let clash = mounts.iter().find(|&(name, target)| {
        let target = target.clone().unwrap_or_else(|| default_mount_path(name));
        destination.as_deref() == Some(target.as_str())
    });
    if let (Some((name, _)), Some(dest)) = (clash, &destination) {
        let message = match &git.destination_dir {
            Some(_) => format!("is also the mount path of volume '{name}'"),
            None => format!("the clone's default destination {dest} is also the mount path of volume '{name}'; set it"),
        };
        cx.error("spec.kernel.git.destination_dir", message);
    }
    Some(git)
}
