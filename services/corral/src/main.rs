//! `corral`: the single binary — `dev` (every service in one process, nothing to install),
//! `pods`, `sesstpl`, `start-template` and `secret` (the command-line client), `serve`
//! (services against Redis and RabbitMQ) and `token` (tokens for first steps and tests).

mod client;
mod dev;
mod serve;
mod services;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use corral_config::Config;

/// Corral launches containers ("pods") on demand from a Tapis-Pods-compatible API.
///
/// Examples:
///   corral dev                                     # everything in one process; prints a token
///   corral pods create --wait --id hello --image busybox -- sh -c 'exec busybox httpd -f -p $PORT -h /tmp'
///   corral pods list                               # CORRAL_URL / CORRAL_TOKEN say where and who
///   corral sesstpl create -f session-template.yaml # a Backend.AI session template
///   corral start-template template1234 --env MYCONFIG=YYY --wait
///   corral token --tenant dev --user alice         # a token for X-Tapis-Token
///   corral serve all                               # every service, against Redis + RabbitMQ
#[derive(Parser)]
#[command(name = "corral", version, verbatim_doc_comment)]
struct Cli {
    /// Configuration file laid over the defaults (also CORRAL_CONFIG).
    #[arg(long, global = true, env = "CORRAL_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process: in-process bus, embedded store, Docker or local processes.
    ///
    /// Nothing to install: pods and their state live in the data directory and survive
    /// restarts (running pods are adopted, not restarted). Docker is used when a Docker engine
    /// answers, otherwise pods run as local processes. Prints the URL, a ready-to-use token
    /// (tenant dev, user $USER) and example commands.
    #[command(after_long_help = "Examples:
  corral dev
  corral dev --runtime process --data-dir /tmp/corral-dev --http-addr 127.0.0.1:9090
  RUST_LOG=debug corral dev")]
    Dev(dev::DevArgs),
    /// Manage pods on a Corral server: create, list, get, logs, start, stop, restart, delete.
    #[command(after_long_help = "Examples:
  export CORRAL_TOKEN=...      # printed by `corral dev`
  corral pods create --wait --id hello --image busybox -- sh -c 'exec busybox httpd -f -p $PORT -h /tmp'
  corral pods list
  corral pods logs hello
  corral pods delete hello")]
    Pods(client::PodsArgs),
    /// Manage session templates (Backend.AI taskTemplate YAML): create, update, list, get, delete.
    #[command(after_long_help = "Examples:
  corral sesstpl create -f session-template.yaml     # or: corral sesstpl create < session-template.yaml
  corral sesstpl list
  corral sesstpl get template1234 > t.yaml
  corral sesstpl update template1234 -f t.yaml
  corral start-template template1234 --wait
  corral sesstpl delete template1234")]
    Sesstpl(client::SesstplArgs),
    /// Start a pod from a session template, with overrides; prints the pod id.
    #[command(after_long_help = client::START_EXAMPLES)]
    StartTemplate(client::StartTemplateArgs),
    /// Manage your named secrets (e.g. a git token for a template's git.credential): set, list, delete.
    #[command(after_long_help = "Examples:
  corral secret set git-token --username alice      # prompts for the value, without echo
  printf %s \"$TOKEN\" | corral secret set git-token
  corral secret list
  corral secret delete git-token")]
    Secret(client::SecretArgs),
    /// Print a token signed with the configured secret (auth.jwt_secret / CORRAL_JWT_SECRET).
    ///
    /// Use it as `X-Tapis-Token: <token>` or `Authorization: Bearer <token>`.
    #[command(after_long_help = "Examples:
  corral token --tenant dev --user alice
  curl -H \"X-Tapis-Token: $(corral token --tenant dev --user alice)\" http://127.0.0.1:8080/v3/pods")]
    Token {
        /// Tenant the token belongs to.
        #[arg(long)]
        tenant: String,
        /// User name inside the tenant.
        #[arg(long)]
        user: String,
        /// Lifetime in seconds (default: auth.token_ttl_s).
        #[arg(long)]
        ttl: Option<u64>,
    },
    /// Run services in this process against the configured Redis, RabbitMQ and runtime.
    #[command(after_long_help = "Examples:
  corral serve all
  CORRAL_REDIS_URL=redis://redis:6379 corral serve spawner --config prod.toml")]
    Serve {
        /// Which service to run; `all` runs the five together.
        #[arg(value_enum)]
        service: serve::Service,
    },
}

/// Stack per async worker. `corral dev` runs all five services' nested futures on the same
/// workers, and their teardown overflowed tokio's 2 MiB default once in CI.
const WORKER_STACK_BYTES: usize = 8 * 1024 * 1024;

// mimalloc rather than glibc malloc: ~10 % more pipeline throughput in the load tests
// (load-tests/README.md, "Allocator experiment").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().thread_stack_size(WORKER_STACK_BYTES).build() {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Pods(args) => return client::run(args).await,
        Command::Sesstpl(args) => return client::run_sesstpl(args).await,
        Command::StartTemplate(args) => return client::run_start_template(args).await,
        Command::Secret(args) => return client::run_secret(args).await,
        Command::Dev(args) => dev::run(cli.config.as_deref(), args).await,
        Command::Token { tenant, user, ttl } => token(cli.config.as_deref(), &tenant, &user, ttl),
        Command::Serve { service } => match Config::load(cli.config.as_deref()).context("loading configuration") {
            Ok(cfg) => serve::run(cfg, service).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn token(config: Option<&std::path::Path>, tenant: &str, user: &str, ttl: Option<u64>) -> anyhow::Result<()> {
    let cfg = Config::load(config).context("loading configuration")?;
    let ttl = ttl.unwrap_or(cfg.auth.token_ttl_s);
    let token = api_gateway::auth::issue_token(&cfg.auth.jwt_secret, tenant, user, ttl).context("signing the token")?;
    println!("{token}");
    Ok(())
}

include!("../../shared/main_support.rs");
