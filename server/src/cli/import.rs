//! `switchyard import mlflow` and `switchyard follow mlflow`: read the
//! options, then `crate::mlflow::import` (one pass) or
//! `crate::mlflow::spawn_sources` (the job `serve` runs, in the foreground).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Failure, Outcome};
use crate::mlflow::{import, Client, Credential, FollowSettings, ImportOptions};
use crate::store::{DynStore, Store};

/// Where a registry is and how it maps (the flags both commands share).
pub(super) struct SourceArgs {
    pub models: Option<String>,
    pub aliases: Vec<String>,
    pub stages: Vec<String>,
    pub prefix: String,
    pub token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl SourceArgs {
    fn is_given(&self) -> bool {
        self.models.is_some()
            || !self.aliases.is_empty()
            || !self.stages.is_empty()
            || !self.prefix.is_empty()
            || self.token_file.is_some()
            || self.username.is_some()
            || self.password_file.is_some()
    }

    /// The import options and the credential these flags give.
    async fn read(self, store: &dyn Store) -> Result<(ImportOptions, Option<Credential>), Failure> {
        let known = environments(store).await?;
        if let Some(p) = &self.models {
            switchyard_domain::mlflow::check_pattern(p)
                .map_err(|e| Failure::usage(format!("--models: {e}")))?;
        }
        let opts = ImportOptions {
            pattern: self.models,
            aliases: pairs(&self.aliases, &known, "--alias")?,
            stages: pairs(&self.stages, &known, "--stage")?,
            prefix: self.prefix,
            print: true,
            ..ImportOptions::default()
        };
        let credential = Credential::resolve(
            self.token_file.as_deref(),
            self.username.as_deref(),
            self.password_file.as_deref(),
        )
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
        Ok((opts, credential))
    }
}

pub(super) struct MlflowArgs {
    pub tracking_uri: String,
    pub source: SourceArgs,
    pub dry_run: bool,
    pub page_size: u32,
}

pub(super) struct FollowArgs {
    pub tracking_uri: Option<String>,
    pub name: String,
    pub source: SourceArgs,
    pub interval_ms: u64,
    pub once: bool,
}

async fn environments(store: &dyn Store) -> Result<Vec<String>, Failure> {
    Ok(store
        .list_environments()
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// `NAME=ENV` pairs, each environment one the database knows.
fn pairs(
    items: &[String],
    known: &[String],
    flag: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    switchyard_domain::mlflow::parse_mapping(items.iter().map(String::as_str), known, flag)
        .map_err(Failure::usage)
}

pub(super) async fn mlflow(store: &dyn Store, args: MlflowArgs) -> Outcome {
    let (mut opts, credential) = args.source.read(store).await?;
    opts.dry_run = args.dry_run;
    switchyard_domain::mlflow::check_prefix(&opts.prefix)
        .map_err(|e| Failure::usage(format!("--prefix: {e}")))?;
    let client = Client::new(&args.tracking_uri, credential, args.page_size)
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let report = import(store, &client, &opts).await;
    println!("{}", report.summary(opts.dry_run, client.tracking_uri()));
    match report.stopped {
        Some(why) => Err(Failure::refused(format!("the import stopped: {why}"))),
        None => Ok(()),
    }
}

/// The sources to follow: the one the flags give, or those `serve` is configured with.
async fn sources(store: &dyn Store, args: FollowArgs) -> Result<Vec<FollowSettings>, Failure> {
    let interval = crate::mlflow::interval(args.interval_ms, "--interval-ms")
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let mut sources = match args.tracking_uri {
        Some(uri) => {
            let (opts, credential) = args.source.read(store).await?;
            vec![FollowSettings::new(&args.name, &uri, credential, opts, interval)
                .map_err(|e| Failure::usage(format!("{e:#}")))?]
        }
        None if args.source.is_given() => {
            return Err(Failure::usage(
                "--models, --alias, --stage, --prefix and credentials describe the registry of --tracking-uri: \
                 give --tracking-uri too, or configure the sources in SWITCHYARD_MLFLOW_SOURCES",
            ))
        }
        None => {
            let configured =
                FollowSettings::from_env().map_err(|e| Failure::usage(format!("{e:#}")))?;
            if configured.is_empty() {
                return Err(Failure::usage(
                    "nothing to follow: give --tracking-uri URL, or set SWITCHYARD_MLFLOW_FOLLOW or \
                     SWITCHYARD_MLFLOW_SOURCES as for `serve`",
                ));
            }
            configured
        }
    };
    crate::mlflow::check_sources(&sources).map_err(|e| Failure::usage(format!("{e:#}")))?;
    crate::mlflow::check_environments(&sources, &environments(store).await?)
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    for s in &mut sources {
        s.opts.print = true;
    }
    Ok(sources)
}

pub(super) async fn follow(store: DynStore, args: FollowArgs) -> Outcome {
    let once = args.once;
    let sources = sources(store.as_ref(), args).await?;
    if once {
        let mut stopped = Vec::new();
        for s in &sources {
            let client = Client::new(
                &s.tracking_uri,
                s.credential.clone(),
                crate::mlflow::PAGE_SIZE,
            )
            .map_err(|e| Failure::usage(format!("{e:#}")))?;
            let report = import(store.as_ref(), &client, &s.opts).await;
            println!(
                "[{}] {}",
                s.name,
                report.summary(false, client.tracking_uri())
            );
            if let Some(why) = report.stopped {
                stopped.push(format!("source {:?}: {why}", s.name));
            }
        }
        if stopped.is_empty() {
            return Ok(());
        }
        return Err(Failure::refused(format!(
            "a pass stopped (run again to resume): {}",
            stopped.join("; ")
        )));
    }
    for s in &sources {
        println!(
            "following {} as source {:?} (prefix {:?}, every {} ms); Ctrl-C stops",
            s.tracking_uri,
            s.name,
            s.opts.prefix,
            s.interval.as_millis()
        );
    }
    let jobs = crate::mlflow::spawn_sources(store, sources, None)
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let stop = tokio::signal::ctrl_c().await;
    for job in jobs {
        job.abort();
    }
    stop.map_err(|e| Failure::refused(format!("cannot wait for Ctrl-C: {e}")))
}
