//! `session.bootstrap`: a shell script run in the pod's container before its command.
//!
//! The container's command is wrapped, so the script runs in the same container (same image,
//! filesystem, environment and limits) and then hands over to the real command:
//!
//! ```text
//! /bin/sh -c '<wrapper>' corral-bootstrap '<script>' <command…> <arguments…>
//! ```
//!
//! The wrapper runs the script with `/bin/sh -c` in a child shell; on success it `exec`s the
//! command with its arguments exactly as given (no re-quoting, no shell between them), on
//! failure it prints [`FAILED_LINE`] with the script's exit code on stderr and exits with that
//! code. Changes the script makes to its own shell (`cd`, `export`) do not reach the command;
//! files it writes do.
//!
//! "Once" means once per container instance: every instance is a fresh container (a retry
//! after a crash, a restart), so it runs the script again before its command, and nothing
//! else ever reruns it. A batch pod has one instance per run.
//!
//! A pod without a bootstrap script runs its command as given, without a shell. A bootstrap
//! script needs the pod's `command` (validation refuses it otherwise): the image's default
//! command is not known here, so there would be nothing to hand over to. The image needs
//! `/bin/sh`.

use corral_model::Desired;
use corral_runtime::ContainerSpec;

/// What the wrapper prints (followed by the code) when the script fails.
pub const FAILED_LINE: &str = "corral: the bootstrap script failed with exit code";

/// The reason given to the state machine for an exit caused by the script (see
/// [`crate::exit`], which tells it from the command's own failure by [`FAILED_LINE`]).
pub const FAILED_REASON: &str = "the bootstrap script failed";

/// `$1` is the script, the rest the command. `$?` right after `||` is the script's status.
const WRAPPER: &str = r#"/bin/sh -c "$1" corral-bootstrap || { code=$?; echo "corral: the bootstrap script failed with exit code $code" >&2; exit $code; }
shift
exec "$@""#;

/// `$0` of the wrapper and of the script, as shown by `ps` and in shell error messages.
const ARGV0: &str = "corral-bootstrap";

/// Wraps the container's command so the pod's bootstrap script runs first. Leaves the spec
/// alone when there is no script (or no command, which validation refuses).
pub fn wrap(d: &Desired, spec: &mut ContainerSpec) {
    let Some(script) = d.spec.session.as_ref().and_then(|s| s.bootstrap.as_deref()) else { return };
    let Some(command) = spec.command.take_if(|c| !c.is_empty()) else { return };
    let mut wrapped: Vec<String> =
        vec!["/bin/sh".into(), "-c".into(), WRAPPER.into(), ARGV0.into(), script.to_string()];
    wrapped.extend(command);
    spec.command = Some(wrapped);
}

/// Whether the end of the output holds the wrapper's failure line for `code`. Not only the
/// last line: runtimes read stdout and stderr separately, so the script's last lines on the
/// other stream may be stored after it. The command never runs after that line, so only the
/// script's own output can follow it.
pub(crate) fn is_failure_tail(tail: &[u8], code: i64) -> bool {
    let want = format!("{FAILED_LINE} {code}");
    String::from_utf8_lossy(tail).lines().any(|line| line.trim_end() == want)
}

#[cfg(test)]
pub(crate) mod tests;
