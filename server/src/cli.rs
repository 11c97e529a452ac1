//! The command line of the `switchyard` binary. Configuration comes from
//! environment variables (`Config::from_env`), not flags, so the same
//! settings apply to `serve` and to every one-off command.

mod analysis;
mod backup;
mod binding;
mod checkpoint;
mod cluster;
mod export;
mod import;
mod pins;
mod subscription;
mod token;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use switchyard_domain::Timestamp;

use crate::config::Config;
use crate::state::AppState;
use crate::store::{DynStore, Store};

const AFTER_HELP: &str = "\
Configuration (environment variables):
  DATABASE_URL                 sqlite://data/switchyard.db (default) or postgres://user:pass@host/db
  SWITCHYARD_ADDR              address to serve on (default 127.0.0.1:3000)
  LOG_FORMAT=json              structured JSON logs instead of human-readable ones
  SWITCHYARD_DEPRECATION_DAYS  days a version stays deprecated before it retires (30-90, default 30)
  SWITCHYARD_METRICS_TOKEN     if set, /metrics needs `Authorization: Bearer <this>`
  SWITCHYARD_OPERATION_LEASE_MS  how long an operation runner's claim holds unrenewed (default 15000):
                               after a crash, another runner resumes the operation once it expires
  SWITCHYARD_OPERATION_POLL_MS   how often the runner looks for operations (default 250)
  SWITCHYARD_DRIFT_INTERVAL_SECS  how often `serve` asks every idle cluster's driver what really runs and
                               records drift detected / cleared in the ledger (1-86400, default 60)
  SWITCHYARD_URL               the server `cluster` commands talk to (default http:// + SWITCHYARD_ADDR)
  SWITCHYARD_TOKEN             the API token `cluster` commands send (switchyard token create prints one)
  SWITCHYARD_MLFLOW_FOLLOW     an MLflow tracking URL: `serve` imports its new versions as they appear
                               (SWITCHYARD_MLFLOW_FOLLOW_ALIASES=champion=production,..., _STAGES, _MODELS,
                               _PREFIX, _INTERVAL_MS default 2000; credentials as for `import mlflow`)
  SWITCHYARD_MLFLOW_SOURCES    a YAML file of MLflow sources to follow, each with its own name, URL, prefix,
                               models, aliases, stages and credential files (docs/mlflow.md)
  SWITCHYARD_MLFLOW_WEBHOOK_SECRET  (or _FILE) with _FOLLOW: POST /api/v1/mlflow/webhook takes MLflow's
                               registry webhooks signed with this secret and reads that model at once
  SWITCHYARD_MLFLOW_WRITE_BACK alias=environment pairs (champion=production,...): each promotion applied
                               sets those MLflow aliases on the version it was imported from (durable,
                               retried; MLflow at SWITCHYARD_MLFLOW_WRITE_BACK_URI, default _FOLLOW)
  SWITCHYARD_CHECKPOINT_KEY      with SWITCHYARD_CHECKPOINT_FILE: `serve` signs the ledger head with this
                               key (from `audit keygen`) and appends a checkpoint to that file every
  SWITCHYARD_CHECKPOINT_INTERVAL_SECS  seconds (default 3600; skipped while the head has not moved)
  SWITCHYARD_CHECKPOINT_FILE     the checkpoint file; the console's Verify chain checks the ledger against
                               it with the public key the auditor brings (alone: read, never signed)
  SWITCHYARD_WEBHOOK_*         notification delivery: TIMEOUT_MS, RETRY_PERIOD_S, BACKOFF_MS, BACKOFF_MAX_MS,
                               BREAKER_FAILURES, BREAKER_COOLDOWN_MS, POLL_MS, ALLOW_PRIVATE=1 (see README)
  SWITCHYARD_PUBLIC_URL        the console's address in notification links
  SWITCHYARD_SECRETS_KEY       32 bytes in base64: webhook signing secrets are stored sealed with it
  SWITCHYARD_URL, SWITCHYARD_TOKEN  server and admin API token for `switchyard subscription`

Exit codes:
  0  success
  1  a check failed (broken ledger, pins not allowed), demo refused, or the command could not complete
  2  bad usage or configuration, an unknown environment, or an unreadable or malformed pin file";

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Switchyard: a release console for machine-learning models",
    after_help = AFTER_HELP,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate the database and serve the console and the REST API.
    Serve {
        /// Fill the database with demo data first if it holds no versions yet.
        #[arg(long)]
        demo_if_empty: bool,
    },
    /// Apply pending database migrations and create the standard environments.
    Migrate,
    /// Fill a fresh database with a realistic six-month history (refused if it holds versions).
    Demo,
    /// The audit ledger.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Pin files: what a pipeline checks before it deploys.
    #[command(subcommand)]
    Pins(PinsCommand),
    /// People who sign in to the console.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens for pipelines and model servers.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Role bindings: who (a user or an identity-provider group) has which role
    /// where (one environment or all), through the REST API (SWITCHYARD_URL,
    /// an admin's token in SWITCHYARD_TOKEN to change them).
    #[command(subcommand)]
    Binding(BindingCommand),
    /// Serving clusters, through a running server's REST API (SWITCHYARD_URL, SWITCHYARD_TOKEN).
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Import versions from another model registry.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Follow another model registry: import its new versions as they appear.
    #[command(subcommand)]
    Follow(FollowCommand),
    /// Copy the database to FILE while servers keep running. SQLite: `VACUUM INTO`,
    /// then the copy's ledger is verified; PostgreSQL: `pg_dump --format=custom`.
    Backup {
        /// The backup file to create (never overwritten).
        file: PathBuf,
    },
    /// Replace the SQLite database with a backup made by `backup`, then verify its
    /// ledger (and the checkpoints, saying whether the backup is older than the newest).
    /// The backup is checked before anything is replaced; the replaced database is kept
    /// beside it. Stop every server using the database first.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// Restore over an existing database (moved aside to DATABASE.before-restore-<time>).
        #[arg(long)]
        replace: bool,
        /// A checkpoint file to verify the restored ledger against.
        #[arg(long, requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The checkpoints' public key: 64 hex digits or a file holding them.
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Notification subscriptions, through the REST API of a running server
    /// (SWITCHYARD_URL, an admin's token in SWITCHYARD_TOKEN).
    #[command(subcommand)]
    Subscription(SubscriptionCommand),
    /// Analysis templates: metric gates on Prometheus (REST API; admin to change).
    #[command(subcommand)]
    Analysis(AnalysisCommand),
    /// Pause, continue or roll back a running operation (REST API).
    #[command(subcommand)]
    Operation(OperationCommand),
}

#[derive(Debug, Subcommand)]
enum AnalysisCommand {
    /// Create or replace a template from a JSON or YAML file (`-`: standard input); see docs/analysis.md.
    Put {
        name: String,
        #[arg(long)]
        file: PathBuf,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
    },
    /// Every template: name, Prometheus, conditions, count and interval.
    List,
    /// One template (JSON).
    Show { name: String },
    /// Remove a template; operations that attached it keep their copy.
    Remove {
        name: String,
        /// Why (kept in the ledger).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperationCommand {
    /// Pause a running operation before its next step; it holds the cluster until continued or rolled back.
    Pause {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Go on: past the gate an inconclusive analysis paused it at, or from where a person paused it.
    Continue {
        id: i64,
        #[arg(long)]
        reason: String,
    },
    /// Send traffic back to what served before the operation (a running one is paused first).
    Rollback {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

/// Where an MLflow registry is and how it maps: shared by `import mlflow`
/// and `follow mlflow` (and a source of `SWITCHYARD_MLFLOW_SOURCES` has the
/// same fields).
#[derive(Debug, Args)]
struct MlflowSourceArgs {
    /// Only MLflow models whose name matches this glob (`*`, `?`).
    #[arg(long)]
    models: Option<String>,
    /// ALIAS=ENVIRONMENT: the version holding the alias is pinned there
    /// (and moved to the stage the environment needs). Repeatable.
    #[arg(long = "alias", value_name = "ALIAS=ENV")]
    aliases: Vec<String>,
    /// STAGE=ENVIRONMENT for MLflow's deprecated stages, e.g.
    /// Production=production: the version gets that environment's stage. Repeatable.
    #[arg(long = "stage", value_name = "STAGE=ENV")]
    stages: Vec<String>,
    /// Put before every model id, e.g. `research-`: keeps two registries' models apart.
    #[arg(long, default_value = "")]
    prefix: String,
    /// A file whose first line is a bearer token for MLflow.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// A user of MLflow's basic-auth app (with --password-file).
    #[arg(long, requires = "password_file")]
    username: Option<String>,
    /// A file whose first line is that user's password.
    #[arg(long, requires = "username")]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import an MLflow Model Registry over its REST API: every registered
    /// model's versions (`name` → model id, version N → vN), aliases and
    /// stages mapped to environments. Re-running it creates nothing new;
    /// it reports versions changed in MLflow since as conflicts.
    /// Credentials: --token-file, --username with --password-file, or
    /// MLflow's own MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and
    /// MLFLOW_TRACKING_PASSWORD.
    Mlflow {
        /// The tracking server, e.g. http://mlflow.internal:5000
        #[arg(long)]
        tracking_uri: String,
        #[command(flatten)]
        source: MlflowSourceArgs,
        /// Print what would be created and refused; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Models or versions asked for per request (1-1000).
        #[arg(long, default_value_t = crate::mlflow::PAGE_SIZE)]
        page_size: u32,
    },
}

#[derive(Debug, Subcommand)]
enum FollowCommand {
    /// Follow an MLflow Model Registry in the foreground: the job `serve`
    /// runs for each configured source, printing what it imports. With
    /// --tracking-uri, that one registry (mapped as `import mlflow` maps
    /// it); without, the sources `serve` would follow (SWITCHYARD_MLFLOW_FOLLOW,
    /// SWITCHYARD_MLFLOW_SOURCES). Stops on Ctrl-C, or after one pass with --once.
    Mlflow {
        /// The tracking server, e.g. http://mlflow.internal:5000
        #[arg(long)]
        tracking_uri: Option<String>,
        /// The source's name in the ledger and logs (with --tracking-uri).
        #[arg(long, default_value = "mlflow", requires = "tracking_uri")]
        name: String,
        #[command(flatten)]
        source: MlflowSourceArgs,
        /// Milliseconds between polls (100-3600000).
        #[arg(long, default_value_t = crate::mlflow::DEFAULT_INTERVAL_MS)]
        interval_ms: u64,
        /// One pass over every source, then exit (status 1 if a pass stopped).
        #[arg(long)]
        once: bool,
    },
}

#[derive(Debug, Subcommand)]
enum BindingCommand {
    /// Give a user or a group a role in one environment or all (admin).
    Add {
        /// The user (exactly one of --user and --group).
        #[arg(long)]
        user: Option<String>,
        /// The identity-provider group.
        #[arg(long)]
        group: Option<String>,
        /// viewer, deployer, approver or admin.
        #[arg(long)]
        role: String,
        /// One environment, or `all` (the default).
        #[arg(long)]
        environment: Option<String>,
    },
    /// Every binding: id, subject, role, environment.
    List,
    /// Remove binding ID (admin); the last admin binding on all is kept.
    Remove { id: i64 },
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Register a cluster (admin); then run `cluster test NAME`.
    Add {
        name: String,
        /// The environment it serves (development, staging, production, …).
        #[arg(long)]
        environment: String,
        /// simulated, oip+haproxy or kubernetes.
        #[arg(long)]
        driver: String,
        /// The driver config, JSON or YAML (`-` reads standard input); see docs/clusters.md.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// List clusters with their slots and running operation.
    List,
    /// One cluster: slots, health now, the router's weights now, its config.
    Show {
        name: String,
        /// The API's JSON answer instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every part the cluster's driver needs; exit 1 naming what is wrong and how to fix it.
    Test { name: String },
    /// Remove a cluster that never ran an operation (admin); one with history is kept.
    Remove { name: String },
    /// Print the HAProxy configuration an oip+haproxy cluster's routing contract needs.
    HaproxyConfig {
        /// A registered cluster (its config is read from the server).
        #[arg(required_unless_present = "config", conflicts_with = "config")]
        name: Option<String>,
        /// The driver config instead (JSON or YAML, `-` for standard input); needs no server.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where HAProxy's frontend listens for inference requests.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
    },
}

#[derive(Debug, Subcommand)]
enum SubscriptionCommand {
    /// Subscribe a destination; a webhook's signing secret is printed once.
    Add {
        #[arg(long)]
        name: String,
        /// http(s) URL of the receiver.
        #[arg(long)]
        url: String,
        /// webhook (default, signed JSON) or chat (Slack-compatible message).
        #[arg(long)]
        kind: Option<String>,
        /// Event kinds (repeat; default: the release events).
        #[arg(long = "event")]
        events: Vec<String>,
        /// Only these models (repeat).
        #[arg(long = "model")]
        models: Vec<String>,
        /// Only these environments (repeat).
        #[arg(long = "env")]
        environments: Vec<String>,
        /// Only these clusters (repeat).
        #[arg(long = "cluster")]
        clusters: Vec<String>,
        /// Send deliveries concurrently, out of event order (default: one after the other, in order).
        #[arg(long)]
        parallel: bool,
    },
    /// Every subscription: name, kind, status, destination, delivery order.
    List,
    /// A subscription with its recent deliveries (JSON).
    Show { name: String },
    /// Delete a subscription with its deliveries.
    Remove { name: String },
    /// Queue a test message to a subscription.
    Test { name: String },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Create {
        #[arg(long)]
        username: String,
        /// viewer, deployer, approver or admin.
        #[arg(long)]
        role: String,
    },
    /// Disable a user: their sessions end and their tokens stop working.
    Disable { username: String },
    /// Replace a local user's groups (what approval policies' required groups
    /// count), e.g. `switchyard user groups rita ml-risk,platform`; an empty
    /// list ("") removes them all. Users signing in through the identity
    /// provider get theirs from its group claim at each sign-in.
    Groups {
        username: String,
        /// Comma-separated group names.
        groups: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token with the user's role; prints it once.
    Create {
        #[arg(long)]
        user: String,
        /// A unique name, recorded in the ledger as `details.via_token` of what is done with it (the actor is the user).
        #[arg(long)]
        name: String,
        /// Lifetime such as 90d or 12h (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
    },
    /// Revoke a token by name.
    Revoke { name: String },
}

/// The ledger actor of changes made on the command line.
const CLI_ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain; exit 1 naming the first broken event. With
    /// --checkpoints and --public-key, also check every signed checkpoint and that
    /// the ledger still holds each checkpointed head (exit 1 naming each contradicted one).
    Verify {
        /// A checkpoint file, as `audit checkpoint` appends to it.
        #[arg(long, requires = "public_key")]
        checkpoints: Option<PathBuf>,
        /// The public key: 64 hex digits (as `audit keygen` / `audit public-key` print) or a file holding them.
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Write the events of a period, with the signed checkpoints that vouch for them, to a
    /// file an auditor checks with scripts/verify_audit_export.py (format: docs/audit-export.md).
    Export {
        /// Start of the period (inclusive), RFC 3339, e.g. 2026-03-01T00:00:00Z.
        #[arg(long)]
        from: String,
        /// End of the period (exclusive), RFC 3339.
        #[arg(long)]
        to: String,
        /// The checkpoint file; one of its checkpoints must have been signed after the period
        /// ended. Without it the export proves nothing (the script says UNSIGNED).
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The export file to write.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a new Ed25519 checkpoint signing key (64 hex digits, mode 0600) and print its public key (64 hex digits).
    Keygen {
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key (64 hex digits) of a signing key.
    PublicKey {
        #[arg(long)]
        key: PathBuf,
    },
    /// Sign the ledger head (event id, hash, time, count, previous checkpoint) and append it to a checkpoint file.
    Checkpoint {
        /// The signing key, as `audit keygen` writes it.
        #[arg(long)]
        key: PathBuf,
        /// The checkpoint file (one JSON line per checkpoint); keep it on other storage than the database.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PinsCommand {
    /// Write an environment's pins as YAML (models: <name>: {model_id, version}).
    Export {
        /// The environment whose pins to export.
        #[arg(long)]
        env: String,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a pin file against an environment's policy; exit 1 naming every offending line.
    Check {
        /// The YAML pin file, as `pins export` writes it.
        file: PathBuf,
        /// The environment the file is meant for.
        #[arg(long)]
        env: String,
    },
}

/// Why a command stopped: the line to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A check that found problems, or a refusal (exit 1).
    fn refused(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// Bad usage or bad input (exit 2).
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

/// Anything else that goes wrong (database unreachable, …): exit 1, with
/// the error and its context on one line.
impl From<MlflowSourceArgs> for import::SourceArgs {
    fn from(a: MlflowSourceArgs) -> import::SourceArgs {
        import::SourceArgs {
            models: a.models,
            aliases: a.aliases,
            stages: a.stages,
            prefix: a.prefix,
            token_file: a.token_file,
            username: a.username,
            password_file: a.password_file,
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::refused(format!("{:#}", e.into()))
    }
}

type Outcome = Result<(), Failure>;

/// Runs the parsed command line and reports how it ended.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn dispatch(command: Command) -> Outcome {
    let config = Config::from_env().map_err(|e| Failure::usage(format!("{e:#}")))?;
    match command {
        Command::Serve { demo_if_empty } => serve(config, demo_if_empty).await,
        Command::Migrate => {
            migrated_store(&config).await?;
            println!("database migrated: {}", redacted(&config.database_url));
            Ok(())
        }
        Command::Demo => demo(&config).await,
        Command::Audit(AuditCommand::Verify {
            checkpoints,
            public_key,
        }) => audit_verify(&config, checkpoints.as_deref().zip(public_key.as_deref())).await,
        Command::Audit(AuditCommand::Export {
            from,
            to,
            checkpoints,
            out,
        }) => {
            let store = open_store(&config).await?;
            export::run(store.as_ref(), &from, &to, checkpoints.as_deref(), &out).await
        }
        Command::Audit(AuditCommand::Keygen { out }) => checkpoint::keygen(&out),
        Command::Backup { file } => backup::backup(&config, &file).await,
        Command::Restore {
            file,
            replace,
            checkpoints,
            public_key,
        } => {
            backup::restore(
                &config,
                &file,
                replace,
                checkpoints.as_deref().zip(public_key.as_deref()),
            )
            .await
        }
        Command::Audit(AuditCommand::PublicKey { key }) => checkpoint::public_key(&key),
        Command::Audit(AuditCommand::Checkpoint { key, out }) => {
            checkpoint::run(open_store(&config).await?.as_ref(), &key, &out).await
        }
        Command::Pins(PinsCommand::Export { env, out }) => {
            pins::export(open_store(&config).await?.as_ref(), &env, out.as_deref()).await
        }
        Command::Pins(PinsCommand::Check { file, env }) => {
            pins::check(open_store(&config).await?.as_ref(), &file, &env).await
        }
        Command::User(UserCommand::Create { username, role }) => {
            user::create(migrated_store(&config).await?.as_ref(), &username, &role).await
        }
        Command::User(UserCommand::Disable { username }) => {
            user::disable(migrated_store(&config).await?.as_ref(), &username).await
        }
        Command::User(UserCommand::Groups { username, groups }) => {
            user::groups(migrated_store(&config).await?.as_ref(), &username, &groups).await
        }
        Command::Token(TokenCommand::Create {
            user,
            name,
            expires,
        }) => {
            token::create(
                migrated_store(&config).await?.as_ref(),
                &user,
                &name,
                expires.as_deref(),
            )
            .await
        }
        Command::Import(ImportCommand::Mlflow {
            tracking_uri,
            source,
            dry_run,
            page_size,
        }) => {
            let store = migrated_store(&config).await?;
            import::mlflow(
                store.as_ref(),
                import::MlflowArgs {
                    tracking_uri,
                    source: source.into(),
                    dry_run,
                    page_size,
                },
            )
            .await
        }
        Command::Follow(FollowCommand::Mlflow {
            tracking_uri,
            name,
            source,
            interval_ms,
            once,
        }) => {
            let store = migrated_store(&config).await?;
            import::follow(
                store,
                import::FollowArgs {
                    tracking_uri,
                    name,
                    source: source.into(),
                    interval_ms,
                    once,
                },
            )
            .await
        }
        Command::Token(TokenCommand::Revoke { name }) => {
            token::revoke(migrated_store(&config).await?.as_ref(), &name).await
        }
        Command::Subscription(command) => {
            let api = subscription::Api::from_env(config.addr)?;
            match command {
                SubscriptionCommand::Add {
                    name,
                    url,
                    kind,
                    events,
                    models,
                    environments,
                    clusters,
                    parallel,
                } => {
                    let new = subscription::NewSubscription {
                        name,
                        url,
                        kind,
                        events,
                        models,
                        environments,
                        clusters,
                        parallel,
                    };
                    subscription::add(&api, new).await
                }
                SubscriptionCommand::List => subscription::list(&api).await,
                SubscriptionCommand::Show { name } => subscription::show(&api, &name).await,
                SubscriptionCommand::Remove { name } => subscription::remove(&api, &name).await,
                SubscriptionCommand::Test { name } => subscription::test(&api, &name).await,
            }
        }
        Command::Cluster(command) => cluster_command(&config, command).await,
        Command::Binding(command) => {
            let api = cluster::Api::from_env(&config)?;
            match command {
                BindingCommand::Add {
                    user,
                    group,
                    role,
                    environment,
                } => {
                    binding::add(
                        &api,
                        user.as_deref(),
                        group.as_deref(),
                        &role,
                        environment.as_deref(),
                    )
                    .await
                }
                BindingCommand::List => binding::list(&api).await,
                BindingCommand::Remove { id } => binding::remove(&api, id).await,
            }
        }
        Command::Analysis(command) => {
            let api = cluster::Api::from_env(&config)?;
            match command {
                AnalysisCommand::Put { name, file, reason } => {
                    analysis::put(&api, &name, &file, &reason).await
                }
                AnalysisCommand::List => analysis::list(&api).await,
                AnalysisCommand::Show { name } => analysis::show(&api, &name).await,
                AnalysisCommand::Remove { name, reason } => {
                    analysis::remove(&api, &name, &reason).await
                }
            }
        }
        Command::Operation(command) => {
            let api = cluster::Api::from_env(&config)?;
            match command {
                OperationCommand::Pause { id, reason } => {
                    analysis::answer(&api, id, "pause", &reason).await
                }
                OperationCommand::Continue { id, reason } => {
                    analysis::answer(&api, id, "continue", &reason).await
                }
                OperationCommand::Rollback { id, reason } => {
                    analysis::answer(&api, id, "rollback", &reason).await
                }
            }
        }
    }
}

async fn cluster_command(config: &Config, command: ClusterCommand) -> Outcome {
    let api = cluster::Api::from_env(config)?;
    match command {
        ClusterCommand::Add {
            name,
            environment,
            driver,
            config,
        } => cluster::add(&api, &name, &environment, &driver, config.as_deref()).await,
        ClusterCommand::List => cluster::list(&api).await,
        ClusterCommand::Show { name, json } => cluster::show(&api, &name, json).await,
        ClusterCommand::Test { name } => cluster::test(&api, &name).await,
        ClusterCommand::Remove { name } => cluster::remove(&api, &name).await,
        ClusterCommand::HaproxyConfig { name, config, bind } => {
            cluster::haproxy(Some(&api), name.as_deref(), config.as_deref(), &bind).await
        }
    }
}

async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    crate::store::connect(&config.database_url, config.store_settings())
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                redacted(&config.database_url)
            )
        })
}

async fn migrated_store(config: &Config) -> anyhow::Result<DynStore> {
    let store = open_store(config).await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// The database URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn holds_versions(store: &dyn Store) -> anyhow::Result<bool> {
    let models = store.list_models().await.context("cannot list models")?;
    Ok(models.iter().any(|m| m.version_count > 0))
}

async fn demo(config: &Config) -> Outcome {
    let store = migrated_store(config).await?;
    if holds_versions(store.as_ref()).await? {
        return Err(Failure::refused(format!(
            "the database {} already holds versions; demo only fills a fresh database \
             (point DATABASE_URL at a new file, e.g. sqlite://data/demo.db)",
            redacted(&config.database_url)
        )));
    }
    let summary = crate::demo::fill(store.as_ref(), Timestamp::now()).await?;
    println!("demo data written: {summary}");
    println!(
        "demo users (sign in to the console with these):\n{}",
        crate::demo::demo_users_text()
    );
    Ok(())
}

async fn audit_verify(config: &Config, checkpoints: Option<(&std::path::Path, &str)>) -> Outcome {
    let store = open_store(config).await?;
    let report = store
        .audit_verify()
        .await
        .context("cannot read the ledger")?;
    match report.first_broken_id {
        None if report.ok => {
            println!("ledger OK: {} events checked", report.checked);
            if let Some((file, public_key)) = checkpoints {
                let verified = checkpoint::verify(store.as_ref(), file, public_key, false).await?;
                println!(
                    "checkpoints OK: {} signed checkpoints in {} hold, the ledger contains each checkpointed head",
                    verified.checked,
                    file.display()
                );
            }
            Ok(())
        }
        broken => {
            let mut message = format!(
                "ledger BROKEN at event {}: {} ({} events checked)",
                broken.map_or_else(|| "?".to_owned(), |id| id.to_string()),
                report
                    .problem
                    .as_deref()
                    .unwrap_or("the chain does not verify"),
                report.checked
            );
            // The checkpoints still say which signed heads the damage reaches.
            if let Some((file, public_key)) = checkpoints {
                if let Err(failure) =
                    checkpoint::verify(store.as_ref(), file, public_key, false).await
                {
                    message = format!("{message}\n{}", failure.message);
                }
            }
            Err(Failure::refused(message))
        }
    }
}

async fn serve(config: Config, demo_if_empty: bool) -> Outcome {
    crate::telemetry::init(config.log_json);
    let store = migrated_store(&config).await?;
    if demo_if_empty && !holds_versions(store.as_ref()).await? {
        let summary = crate::demo::fill(store.as_ref(), Timestamp::now()).await?;
        tracing::info!(%summary, "the database was empty: demo data written");
        // Printed, not logged: the demo passwords are for the person at the terminal.
        println!(
            "demo users (sign in to the console with these):\n{}",
            crate::demo::demo_users_text()
        );
    }
    let settings =
        crate::operations::RunnerSettings::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let checkpoints = checkpoint::Periodic::from_env(config.checkpoint_file.as_deref())?;
    let drift_every =
        crate::drift::interval_from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let mut notify_settings =
        crate::notify::NotifySettings::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let app = crate::startup::Application::build(config.clone())
        .await
        .context("cannot start the server")?;
    let retirement = crate::jobs::spawn(AppState {
        store: store.clone(),
        config: Arc::new(config),
        drivers: app.drivers(),
        mlflow: app.mlflow_trigger(),
        imports: app.mlflow_imports(),
        sso: Arc::new(crate::sso::Sso::disabled()),
    });
    let webhook_secret =
        crate::mlflow::webhook::secret_from_env().map_err(|e| Failure::usage(format!("{e:#}")))?;
    let sources =
        crate::mlflow::FollowSettings::from_env().map_err(|e| Failure::usage(format!("{e:#}")))?;
    app.mlflow_imports().set_sources(&sources);
    let write_back = crate::mlflow::write_back::WriteBackSettings::from_env(&sources)
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    // Each MLflow is written back to as the source that follows it, if it has a credential.
    if let Some(wb) = &write_back {
        notify_settings.mlflow_credentials = wb.credentials();
    }
    if webhook_secret.is_some() && sources.is_empty() {
        return Err(Failure::usage(
            "SWITCHYARD_MLFLOW_WEBHOOK_SECRET is set but no MLflow is followed \
             (SWITCHYARD_MLFLOW_FOLLOW or SWITCHYARD_MLFLOW_SOURCES): webhooks only speed up following"
                .to_owned(),
        ));
    }
    let follow = if sources.is_empty() {
        Vec::new()
    } else {
        let known: Vec<String> = store
            .list_environments()
            .await?
            .into_iter()
            .map(|e| e.name)
            .collect();
        crate::mlflow::check_environments(&sources, &known)
            .map_err(|e| Failure::usage(format!("{e:#}")))?;
        for s in &sources {
            tracing::info!(source = %s.name, tracking_uri = %s.tracking_uri, prefix = %s.opts.prefix,
                webhooks = webhook_secret.is_some(), "following the MLflow registry");
        }
        let passes = webhook_secret.map(|secret| {
            let (tx, rx) = tokio::sync::mpsc::channel(crate::mlflow::webhook::QUEUE);
            app.mlflow_trigger().connect(secret, tx);
            rx
        });
        crate::mlflow::spawn_sources(store.clone(), sources, passes)
            .map_err(|e| Failure::usage(format!("{e:#}")))?
    };
    let configured: Vec<String> = match &write_back {
        Some(wb) => {
            let done = wb
                .configure(&store)
                .await
                .map_err(|e| Failure::usage(format!("{e:#}")))?;
            for (t, (name, done)) in wb.targets.iter().zip(done) {
                tracing::info!(tracking_uri = %t.tracking_uri, source = %t.source, subscription = %name, ?done,
                    "promotions are written back to MLflow as aliases");
            }
            wb.targets.iter().map(|t| t.subscription.clone()).collect()
        }
        None => Vec::new(),
    };
    // A write-back subscription the settings no longer define keeps writing back.
    if let Ok(subs) = store.list_subscriptions().await {
        for s in subs.iter().filter(|s| {
            s.kind == crate::store::notify::DestinationKind::MlflowAlias
                && !configured.contains(&s.name)
        }) {
            tracing::warn!(subscription = %s.name,
                "the MLflow write-back's subscription {} is not defined by this server's settings \
                 (SWITCHYARD_MLFLOW_WRITE_BACK, the followed sources): promotions are still written back \
                 with it; DELETE /api/v1/subscriptions/{} to stop", s.name, s.name);
        }
    }
    // The runner shares the server's drivers, so live health shows the routers it drives.
    let checkpointer = checkpoints.map(|periodic| periodic.spawn(store.clone()));
    let notifier = crate::notify::spawn(store.clone(), notify_settings);
    let drift_watcher = crate::drift::spawn(store.clone(), app.drivers(), drift_every);
    let runner = crate::operations::spawn(store, app.drivers(), settings);
    let stopped = app
        .run_until_stopped()
        .await
        .context("the server stopped with an error");
    retirement.abort();
    drift_watcher.abort();
    runner.abort();
    for job in follow {
        job.abort();
    }
    if let Some(task) = checkpointer {
        task.abort();
    }
    notifier.abort();
    Ok(stopped?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn passwords_in_database_urls_are_not_printed() {
        assert_eq!(
            redacted("postgres://switchyard:s3cret@db:5432/switchyard"),
            "postgres://switchyard:***@db:5432/switchyard"
        );
        assert_eq!(
            redacted("sqlite://data/switchyard.db"),
            "sqlite://data/switchyard.db"
        );
    }
}
