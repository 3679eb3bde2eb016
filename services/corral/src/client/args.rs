//! Command-line shape of `corral pods …`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::spec::{parse_duration, parse_env};

/// Where the server is, who is asking, and how to print.
#[derive(Debug, Args)]
#[command(next_help_heading = "Server and output")]
pub struct Connection {
    /// Server URL.
    #[arg(long, global = true, env = "CORRAL_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Token sent as X-Tapis-Token (`corral dev` prints one).
    #[arg(long, global = true, env = "CORRAL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API result as pretty JSON instead of a human view.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--wait` and `--timeout`.
#[derive(Debug, Clone, Copy, Args)]
pub struct WaitArgs {
    /// Follow the pod until it gets there, printing every status change.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this long (120, 90s, 2m, 500ms).
    #[arg(long, value_parser = parse_duration, default_value = "120s", requires = "wait")]
    pub timeout: Duration,
}

/// `corral pods …` flags and subcommand.
#[derive(Debug, Args)]
pub struct PodsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: PodsCommand,
}

#[derive(Debug, Subcommand)]
pub enum PodsCommand {
    /// Create a pod from flags or a JSON file, optionally waiting until it is AVAILABLE.
    ///
    /// The command is given either after `--` (everything that follows is the command
    /// line, word by word, no shell in between) or as repeated `--command WORD`. Under the
    /// process runtime the image is not used and the pod's port arrives as $PORT.
    #[command(after_long_help = CREATE_EXAMPLES)]
    Create(Box<CreateArgs>),
    /// List your pods: id, status, image, URL and age.
    #[command(
        visible_alias = "ls",
        after_long_help = "Examples:\n  corral pods list\n  corral pods list --json | jq -r '.[].pod_id'"
    )]
    List,
    /// Show one pod: status, command, URL, timestamps and the last container message.
    #[command(after_long_help = "Examples:\n  corral pods get hello\n  corral pods get hello --json | jq -r .status")]
    Get {
        /// Pod id.
        pod_id: String,
    },
    /// Print a pod's container output (or, with --actions, its action log).
    #[command(after_long_help = "Examples:\n  corral pods logs hello\n  corral pods logs hello --actions")]
    Logs {
        /// Pod id.
        pod_id: String,
        /// Print the action log (who asked for what, and what the spawner did) instead.
        #[arg(long)]
        actions: bool,
    },
    /// Start a STOPPED, COMPLETE or ERROR pod again.
    #[command(after_long_help = "Examples:\n  corral pods start hello --wait")]
    Start {
        /// Pod id.
        pod_id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Stop a pod's container; the pod stays, STOPPED, until started or deleted.
    #[command(after_long_help = "Examples:\n  corral pods stop hello --wait")]
    Stop {
        /// Pod id.
        pod_id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Replace a pod's container with a new one.
    #[command(after_long_help = "Examples:\n  corral pods restart hello --wait --timeout 60s")]
    Restart {
        /// Pod id.
        pod_id: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Delete pods: they disappear at once; their containers are removed right after.
    #[command(
        visible_alias = "rm",
        after_long_help = "Examples:\n  corral pods delete hello\n  corral pods delete web1 web2"
    )]
    Delete {
        /// Pod ids.
        #[arg(required = true)]
        pod_ids: Vec<String>,
    },
}

const CREATE_EXAMPLES: &str = "Examples:
  # process runtime (corral dev without Docker): the port arrives as $PORT
  corral pods create --wait --id hello --image busybox -- sh -c 'exec busybox httpd -f -p $PORT -h /tmp'
  # docker runtime
  corral pods create --wait --id web --image corral-test/busybox --port 8000 -- httpd -f -p 8000 -h /www
  # from a file (Tapis NewPod JSON), or '-' for stdin
  corral pods create -f pod.json --wait
  echo '{\"pod_id\":\"web2\",\"image\":\"busybox\",\"command\":[\"sleep\",\"600\"]}' | corral pods create -f -";

/// `corral pods create` flags.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Pod definition as JSON (Tapis NewPod), `-` for stdin; excludes the pod flags.
    #[arg(short = 'f', long = "file", value_name = "FILE",
          conflicts_with_all = ["id", "image", "command", "argv", "arg", "port", "env", "description", "stopped"])]
    pub file: Option<PathBuf>,
    /// Pod id: 3 to 64 lowercase letters and digits, starting with a letter.
    #[arg(long)]
    pub id: Option<String>,
    /// Container image.
    #[arg(long)]
    pub image: Option<String>,
    /// One word of the command; repeat for each word (or put the command after `--`).
    #[arg(long = "command", value_name = "WORD", conflicts_with = "argv")]
    pub command: Vec<String>,
    /// One argument appended to the command (Tapis `arguments`); repeatable.
    #[arg(long = "arg", value_name = "WORD")]
    pub arg: Vec<String>,
    /// Port the pod serves HTTP on (networking.default; default 5000).
    #[arg(long)]
    pub port: Option<u16>,
    /// Environment variable for the container; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Free-text description.
    #[arg(long)]
    pub description: Option<String>,
    /// Create the pod without starting it (status_requested OFF).
    #[arg(long)]
    pub stopped: bool,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// The command line, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub argv: Vec<String>,
}
