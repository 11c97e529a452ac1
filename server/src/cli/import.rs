//! `switchyard import mlflow`: reads the options, then `crate::mlflow::import`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchyard_domain::mlflow::AliasMap;

use super::{Failure, Outcome};
use crate::mlflow::{import, Client, Credential, ImportOptions};
use crate::store::Store;

pub(super) struct MlflowArgs {
    pub tracking_uri: String,
    pub models: Option<String>,
    pub dry_run: bool,
    pub aliases: Vec<String>,
    pub stages: Vec<String>,
    pub token_file: Option<PathBuf>,
    pub page_size: u32,
}

/// `NAME=ENV` pairs, each environment one the database knows.
fn pairs(
    items: &[String],
    known: &[String],
    flag: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut out = BTreeMap::new();
    for item in items {
        let (name, env) =
            AliasMap::parse_pair(item).map_err(|e| Failure::usage(format!("{flag}: {e}")))?;
        if !known.contains(&env) {
            return Err(Failure::usage(format!(
                "{flag} {item}: unknown environment {env:?} (known: {})",
                known.join(", ")
            )));
        }
        if let Some(previous) = out.insert(name.clone(), env.clone()) {
            if previous != env {
                return Err(Failure::usage(format!(
                    "{flag}: {name} is mapped to both {previous} and {env}"
                )));
            }
        }
    }
    Ok(out)
}

pub(super) async fn mlflow(store: &dyn Store, args: MlflowArgs) -> Outcome {
    let known: Vec<String> = store
        .list_environments()
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let opts = ImportOptions {
        pattern: args.models,
        dry_run: args.dry_run,
        aliases: pairs(&args.aliases, &known, "--alias")?,
        stages: pairs(&args.stages, &known, "--stage")?,
        changed_since: None,
        only: None,
        print: true,
    };
    let credential = Credential::from_env(args.token_file.as_deref())
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let client = Client::new(&args.tracking_uri, credential, args.page_size)
        .map_err(|e| Failure::usage(format!("{e:#}")))?;
    let report = import(store, &client, &opts).await;
    println!("{}", report.summary(opts.dry_run, client.tracking_uri()));
    match report.stopped {
        Some(why) => Err(Failure::refused(format!("the import stopped: {why}"))),
        None => Ok(()),
    }
}
