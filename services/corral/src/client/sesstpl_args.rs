//! Command-line shape of `corral sesstpl …` and `corral start-template`, named after the
//! `backend.ai` commands their users know.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{Connection, WaitArgs};
use super::overrides::{OverrideFlags, parse_set};
use super::spec::parse_env;

/// `corral sesstpl …` flags and subcommand.
#[derive(Debug, Args)]
pub struct SesstplArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: SesstplCommand,
}

#[derive(Debug, Subcommand)]
pub enum SesstplCommand {
    /// Upload a session template (Backend.AI `kind: taskTemplate`) from YAML or JSON.
    ///
    /// The document comes from -f FILE, from stdin with `-f -`, or from stdin when it is
    /// piped. Every alias of the Backend.AI format is accepted (apiVersion, sessionType,
    /// startupCommand, destinationDir, …); the server stores one normalised form. A bad
    /// document is refused with every problem and its path, and nothing is stored.
    #[command(after_long_help = CREATE_EXAMPLES)]
    Create {
        /// The document (YAML or JSON); `-` for stdin.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Replace a session template's document (a new version; pods already started keep theirs).
    #[command(after_long_help = "Examples:
  corral sesstpl get template1234 > t.yaml     # edit, then:
  corral sesstpl update template1234 -f t.yaml
  corral sesstpl update template1234 < t.yaml")]
    Update {
        /// Template id (its `metadata.name`, which the document must keep).
        id: String,
        /// The new document (YAML or JSON); `-` for stdin.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// List the session templates you may read: id, tag, type, image, owner, last update.
    #[command(
        visible_alias = "ls",
        after_long_help = "Examples:\n  corral sesstpl list\n  corral sesstpl list --json | jq -r '.[].id'"
    )]
    List,
    /// Print a session template as canonical YAML (ready for `update`), or the API view with --json.
    #[command(after_long_help = "Examples:
  corral sesstpl get template1234
  corral sesstpl get template1234 --json | jq .tag_timestamp")]
    Get {
        /// Template id.
        id: String,
    },
    /// Delete session templates (they are Tapis templates too: those go with them).
    #[command(
        visible_alias = "rm",
        after_long_help = "Examples:\n  corral sesstpl delete template1234\n  corral sesstpl delete t1 t2"
    )]
    Delete {
        /// Template ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

const CREATE_EXAMPLES: &str = "Examples:
  corral sesstpl create -f session-template.yaml
  corral sesstpl create < session-template.yaml
  cat <<'EOF' | corral sesstpl create
  api_version: v1
  kind: taskTemplate
  metadata: {name: hello}
  spec:
    kernel:
      image: corral-test/busybox
      environ: {GREETING: hi}
      run: {startup_command: 'echo $GREETING; exec httpd -f -p 5000 -h /www'}
  EOF";

/// `corral start-template` flags.
#[derive(Debug, Args)]
pub struct StartTemplateArgs {
    #[command(flatten)]
    pub conn: Connection,
    /// Session template id.
    pub id: String,
    /// Id of the new pod (default: the template id and 12 random hex digits).
    #[arg(long, value_name = "POD_ID")]
    pub pod_id: Option<String>,
    /// Set an environment variable (spec.kernel.environ), on top of the template's; repeatable.
    /// `--env K=` sets it to the empty string.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Remove one of the template's environment variables; repeatable.
    #[arg(long = "unset-env", value_name = "KEY")]
    pub unset_env: Vec<String>,
    /// Override any field by its path: `null` removes it, a whole number is a number,
    /// anything else a string; repeatable.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    #[command(flatten)]
    pub wait: WaitArgs,
}

impl StartTemplateArgs {
    pub fn overrides(&self) -> OverrideFlags {
        OverrideFlags { set: self.set.clone(), env: self.env.clone(), unset_env: self.unset_env.clone() }
    }
}

/// `corral start-template --help` examples.
pub const START_EXAMPLES: &str = "Examples:
  corral start-template template1234                      # prints the pod id
  POD=$(corral start-template template1234) && corral pods get $POD
  corral start-template template1234 --pod-id mysession --env MYCONFIG=YYY --unset-env DEBUG --wait
  corral start-template nightly --set spec.batch_timeout=600 --set spec.resources.cpu=500m --wait --timeout 15m

Overrides merge over the template: --env adds or replaces one variable and keeps the others,
--unset-env removes one, --set PATH=VALUE replaces one field (PATH as in the document, e.g.
spec.kernel.image, spec.resources.mem, spec.mounts.NAME; VALUE null removes it).

With --wait an interactive session is followed until AVAILABLE; a batch session until it
finishes: exit status 0 when it completed with exit code 0, 1 otherwise (its exit code and
reason are printed).";
