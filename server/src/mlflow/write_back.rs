//! Write-back of promotions to MLflow as aliases (`SWITCHYARD_MLFLOW_WRITE_BACK`).
//!
//! It rides on the notification outbox: one subscription of kind
//! `mlflow-alias` per MLflow written to (each followed source, configured at
//! start-up from the settings, filtered on `promotion.applied` in the mapped
//! environments) gets a delivery written in the transaction of each
//! promotion, claimed by lease and retried with back-off like any other;
//! dead ones are in the ledger and the status endpoint, per MLflow. A
//! version's aliases are set in the MLflow it was imported from (its
//! registration event) by that MLflow's subscription; the others let the
//! delivery go without a record, so an outage of one MLflow holds up only
//! its own write-backs. An attempt sets the aliases, reads them back, and the
//! answer is recorded as `mlflow.alias_set` in the same transaction that
//! marks the delivery delivered; a promotion written to no MLflow (a version
//! not imported, or from an MLflow not written to) is recorded once, as
//! `mlflow.alias_skipped` with the reason.

use serde_json::{json, Value};
use switchyard_domain::ledger::{action, LedgerEvent, NewEvent};
use switchyard_domain::mlflow::{write_back_for, WriteBack, WriteBackMap, WriteBackTarget};
use switchyard_domain::{FullId, Timestamp};

use super::{same_server, Client, Credential, FollowSettings};
use crate::store::notify::{ClaimedDelivery, DestinationKind, Filter, NewSubscription};
use crate::store::{AuditQuery, DynStore};

/// The subscription of the write-back to the MLflow of source `mlflow`
/// (`SWITCHYARD_MLFLOW_FOLLOW`) or `SWITCHYARD_MLFLOW_WRITE_BACK_URI`; a
/// source of `SWITCHYARD_MLFLOW_SOURCES` named N has `mlflow-write-back-N`.
pub const SUBSCRIPTION: &str = "mlflow-write-back";

/// The subscription name of the write-back to source `source`.
pub fn subscription_name(source: &str) -> String {
    if source == "mlflow" {
        SUBSCRIPTION.to_owned()
    } else {
        format!("{SUBSCRIPTION}-{source}")
    }
}

/// One MLflow written to, with its own subscription.
#[derive(Debug, Clone)]
pub struct Target {
    /// The source it is followed as (`mlflow` for `SWITCHYARD_MLFLOW_WRITE_BACK_URI`
    /// naming no followed MLflow).
    pub source: String,
    pub subscription: String,
    pub tracking_uri: String,
    /// The source's credential; none: MLflow's own variables.
    pub credential: Option<Credential>,
}

/// `SWITCHYARD_MLFLOW_WRITE_BACK=alias=environment,…` and the tracking
/// servers it writes to: every followed source (`SWITCHYARD_MLFLOW_FOLLOW`,
/// `SWITCHYARD_MLFLOW_SOURCES`; sources on one tracking URI share one), or
/// only `SWITCHYARD_MLFLOW_WRITE_BACK_URI` when it is set.
#[derive(Debug, Clone)]
pub struct WriteBackSettings {
    pub map: WriteBackMap,
    pub targets: Vec<Target>,
}

impl WriteBackSettings {
    pub fn from_env(sources: &[FollowSettings]) -> anyhow::Result<Option<WriteBackSettings>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let Some(pairs) = var("SWITCHYARD_MLFLOW_WRITE_BACK") else {
            return Ok(None);
        };
        let map = WriteBackMap::parse(&pairs)
            .map_err(|e| anyhow::anyhow!("SWITCHYARD_MLFLOW_WRITE_BACK: {e}"))?;
        let targets = targets(var("SWITCHYARD_MLFLOW_WRITE_BACK_URI").as_deref(), sources)?;
        Ok(Some(WriteBackSettings { map, targets }))
    }

    /// The subscriptions these settings define, one per target; the first
    /// target records the skips.
    pub fn subscriptions(&self) -> Vec<NewSubscription> {
        let aliases: serde_json::Map<String, Value> = self
            .map
            .by_environment
            .iter()
            .map(|(env, aliases)| (env.clone(), json!(aliases)))
            .collect();
        self.targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let others: Vec<&str> = self
                    .targets
                    .iter()
                    .filter(|o| o.subscription != t.subscription)
                    .map(|o| o.tracking_uri.as_str())
                    .collect();
                NewSubscription {
                    name: t.subscription.clone(),
                    kind: DestinationKind::MlflowAlias,
                    url: t.tracking_uri.clone(),
                    filter: Filter {
                        events: vec![action::PROMOTION_APPLIED.to_owned()],
                        environments: self.map.environments(),
                        ..Filter::default()
                    },
                    secret: String::new(),
                    options: json!({ "aliases": aliases, "others": others, "records_skips": i == 0 }),
                    // Aliases move in promotion order: a later promotion's alias must win.
                    parallel: false,
                }
            })
            .collect()
    }

    /// The credential each tracking URI is written to with (those with one).
    pub fn credentials(&self) -> std::collections::BTreeMap<String, Credential> {
        self.targets
            .iter()
            .filter_map(|t| Some((t.tracking_uri.clone(), t.credential.clone()?)))
            .collect()
    }

    /// Creates or updates the write-back's subscriptions (ledger
    /// `subscription.created` / `subscription.updated`, actor `system`).
    pub async fn configure(
        &self,
        store: &DynStore,
    ) -> anyhow::Result<Vec<(String, crate::store::notify::Configured)>> {
        let known: Vec<String> = store
            .list_environments()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read the environments: {e}"))?
            .into_iter()
            .map(|e| e.name)
            .collect();
        if let Some(unknown) = self
            .map
            .environments()
            .into_iter()
            .find(|e| !known.contains(e))
        {
            anyhow::bail!(
                "SWITCHYARD_MLFLOW_WRITE_BACK names environment {unknown:?}, which does not exist (environments: {})",
                known.join(", ")
            );
        }
        let mut done = Vec::new();
        for sub in self.subscriptions() {
            // A second try when another server created it between our read and write.
            let mut last = None;
            let mut configured = None;
            for _ in 0..2 {
                match store
                    .configure_subscription(sub.clone(), "system", Timestamp::now())
                    .await
                {
                    Ok((_, d)) => {
                        configured = Some(d);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            match configured {
                Some(d) => done.push((sub.name.clone(), d)),
                None => anyhow::bail!(
                    "cannot configure the MLflow write-back to {} (subscription {}): {}",
                    sub.url,
                    sub.name,
                    last.map(|e| e.to_string()).unwrap_or_default()
                ),
            }
        }
        Ok(done)
    }
}

/// The write-back's targets: `uri` alone when given (signing in as the
/// source following it, if any), else every source, one per tracking URI.
fn targets(uri: Option<&str>, sources: &[FollowSettings]) -> anyhow::Result<Vec<Target>> {
    if let Some(uri) = uri {
        let uri = uri.trim().trim_end_matches('/').to_owned();
        if !(uri.starts_with("http://") || uri.starts_with("https://")) {
            anyhow::bail!(
                "SWITCHYARD_MLFLOW_WRITE_BACK_URI must be an http:// or https:// URL, not {uri:?}"
            );
        }
        let followed = sources.iter().find(|s| same_server(&s.tracking_uri, &uri));
        return Ok(vec![Target {
            source: followed.map_or_else(|| "mlflow".to_owned(), |s| s.name.clone()),
            subscription: SUBSCRIPTION.to_owned(),
            credential: followed.and_then(|s| s.credential.clone()),
            tracking_uri: uri,
        }]);
    }
    if sources.is_empty() {
        anyhow::bail!(
            "SWITCHYARD_MLFLOW_WRITE_BACK is set but no MLflow is named: follow one \
             (SWITCHYARD_MLFLOW_FOLLOW or SWITCHYARD_MLFLOW_SOURCES) or set \
             SWITCHYARD_MLFLOW_WRITE_BACK_URI to its tracking URL"
        );
    }
    let mut out: Vec<Target> = Vec::new();
    for s in sources {
        if out
            .iter()
            .any(|t| same_server(&t.tracking_uri, &s.tracking_uri))
        {
            continue;
        }
        let subscription = subscription_name(&s.name);
        if subscription.len() > 64 {
            anyhow::bail!(
                "the write-back to MLflow source {:?} would be subscription {subscription:?}, longer than 64 characters: give the source a shorter name",
                s.name
            );
        }
        out.push(Target {
            source: s.name.clone(),
            subscription,
            tracking_uri: s.tracking_uri.clone(),
            credential: s.credential.clone(),
        });
    }
    Ok(out)
}

/// The write-back's alias map, as stored in the subscription's options.
fn stored_map(options: &Value) -> Result<WriteBackMap, String> {
    let mut map = WriteBackMap::default();
    let Some(envs) = options.get("aliases").and_then(Value::as_object) else {
        return Err("the mlflow-alias subscription has no aliases in its options".to_owned());
    };
    for (env, aliases) in envs {
        let list = aliases
            .as_array()
            .ok_or_else(|| format!("the aliases of {env} are not a list"))?;
        for a in list {
            let a = a
                .as_str()
                .ok_or_else(|| format!("an alias of {env} is not text"))?;
            map.by_environment
                .entry(env.clone())
                .or_default()
                .insert(a.to_owned());
        }
    }
    Ok(map)
}

/// The subscription's place among the write-back's targets, as stored in
/// its options (a subscription configured before there were several: the
/// only one).
fn stored_target(url: &str, options: &Value) -> Result<WriteBackTarget, String> {
    let mut target = WriteBackTarget::only(url);
    if let Some(others) = options.get("others") {
        target.others = others
            .as_array()
            .ok_or("the other MLflows of the mlflow-alias subscription are not a list")?
            .iter()
            .map(|o| o.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("an other MLflow of the mlflow-alias subscription is not text")?;
    }
    if let Some(records) = options.get("records_skips") {
        target.records_skips = records
            .as_bool()
            .ok_or("records_skips of the mlflow-alias subscription is not true or false")?;
    }
    Ok(target)
}

/// The tracking URI the version was imported from (its registration event).
async fn imported_from(store: &DynStore, full_id: &FullId) -> Result<Option<String>, String> {
    let mut q = AuditQuery {
        action: Some(action::VERSION_REGISTERED.to_owned()),
        model: Some(full_id.model_id.to_string()),
        limit: 500,
        ..AuditQuery::default()
    };
    let version = full_id.version.to_string();
    loop {
        let page = store
            .audit_page(&q)
            .await
            .map_err(|e| format!("cannot read the registration of {full_id}: {e}"))?;
        if let Some(ev) = page
            .events
            .iter()
            .find(|e| e.version.as_deref() == Some(version.as_str()))
        {
            let import = &ev.details["import"];
            return Ok((import["source"] == "mlflow")
                .then(|| import["tracking_uri"].as_str().map(str::to_owned))
                .flatten());
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return Ok(None),
        }
    }
}

/// One attempt of a write-back delivery: the status code and the event to
/// record with it, or why it failed (retried).
pub async fn attempt(
    store: &DynStore,
    http: &reqwest::Client,
    credential: Option<&Credential>,
    c: &ClaimedDelivery,
) -> Result<(u16, Option<NewEvent>), String> {
    let client = Client::from_parts(http.clone(), &c.subscription.url, credential.cloned());
    let Some(ev) = c.event.as_ref() else {
        // A test message: can MLflow be reached and read with these credentials?
        client
            .get(
                "registered-models/search",
                &[("max_results", "1")],
                "testing the write-back",
            )
            .await
            .map_err(|e| format!("{e:#}"))?;
        return Ok((200, None));
    };
    let map = stored_map(&c.subscription.options)?;
    let target = stored_target(&c.subscription.url, &c.subscription.options)?;
    let (Some(model), Some(version), Some(env)) = (&ev.model_id, &ev.version, &ev.environment)
    else {
        let why = "the event names no version and environment".to_owned();
        return Ok((200, target.records_skips.then(|| skipped(c, ev, None, why))));
    };
    let full_id = FullId::parse(&format!("{model}:{version}"))
        .map_err(|e| format!("event {} names a bad version: {e}", ev.id))?;
    let v = store
        .get_version(&full_id)
        .await
        .map_err(|e| format!("cannot read {full_id}: {e}"))?;
    let Some(v) = v else {
        let why = format!("{full_id} does not exist");
        return Ok((
            200,
            target
                .records_skips
                .then(|| skipped(c, ev, Some(&full_id), why)),
        ));
    };
    let from = imported_from(store, &full_id).await?;
    let (name, mlflow_version, aliases) =
        match write_back_for(&map, env, &v.config, from.as_deref(), &target) {
            WriteBack::Skip(why) => return Ok((200, Some(skipped(c, ev, Some(&full_id), why)))),
            WriteBack::NotHere(why) => {
                tracing::debug!(subscription = %c.subscription.name, version = %full_id,
                    "not written back to {}: {why}", client.tracking_uri());
                return Ok((200, None));
            }
            WriteBack::Set {
                name,
                version,
                aliases,
            } => (name, version, aliases),
        };
    let mut answers = serde_json::Map::new();
    for alias in &aliases {
        let what =
            format!("setting alias {alias:?} of MLflow model {name:?} to version {mlflow_version}");
        client
            .post(
                "registered-models/alias",
                &json!({ "name": name, "alias": alias, "version": mlflow_version }),
                &what,
            )
            .await
            .map_err(|e| format!("{e:#}"))?;
        // Read back: what code loading models:/name@alias gets now.
        let what = format!("reading alias {alias:?} of MLflow model {name:?} back");
        let answer = client
            .get(
                "registered-models/alias",
                &[("name", name.as_str()), ("alias", alias.as_str())],
                &what,
            )
            .await
            .map_err(|e| format!("{e:#}"))?;
        let got = answer["model_version"]["version"]
            .as_str()
            .unwrap_or_default();
        if got != mlflow_version {
            return Err(format!(
                "MLflow answers version {got:?} for alias {alias:?} of {name:?} right after it was set to {mlflow_version}"
            ));
        }
        answers.insert(alias.clone(), answer["model_version"].clone());
    }
    let record = NewEvent::new(Timestamp::now(), "system", action::MLFLOW_ALIAS_SET)
        .full_id(&full_id)
        .environment(env)
        .reason(Some(&format!(
            "promotion into {env} written back to MLflow: {} → {name:?} version {mlflow_version}",
            aliases.join(", ")
        )))
        .details(json!({
            "tracking_uri": client.tracking_uri(),
            "mlflow_name": name,
            "mlflow_version": mlflow_version,
            "aliases": aliases,
            "answer": answers,
            "promotion_event_id": ev.id,
            "promotion_id": ev.details.get("promotion_id"),
            "subscription": c.subscription.name,
            "delivery_id": c.delivery.id,
            "attempts": c.delivery.attempts,
        }));
    Ok((200, Some(record)))
}

fn skipped(
    c: &ClaimedDelivery,
    ev: &LedgerEvent,
    full_id: Option<&FullId>,
    why: String,
) -> NewEvent {
    let mut record = NewEvent::new(Timestamp::now(), "system", action::MLFLOW_ALIAS_SKIPPED)
        .reason(Some(&why))
        .details(json!({
            "tracking_uri": c.subscription.url,
            "promotion_event_id": ev.id,
            "subscription": c.subscription.name,
            "delivery_id": c.delivery.id,
        }));
    if let Some(f) = full_id {
        record = record.full_id(f);
    }
    if let Some(env) = &ev.environment {
        record = record.environment(env);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, uri: &str, credential: Option<Credential>) -> FollowSettings {
        FollowSettings::new(
            name,
            uri,
            credential,
            crate::mlflow::ImportOptions::default(),
            std::time::Duration::from_secs(2),
        )
        .expect("a source")
    }

    #[test]
    fn each_followed_mlflow_gets_its_own_subscription_and_the_first_records_the_skips() {
        let token = Credential::Bearer("tok".into());
        let sources = [
            source("mlflow", "http://mlflow-a:5000/", None),
            source("research", "http://mlflow-b:5000", Some(token)),
            // The same registry under another prefix: one write-back.
            source("research-copy", "http://mlflow-b:5000", None),
        ];
        let s = WriteBackSettings {
            map: WriteBackMap::parse("champion=production,challenger=staging").expect("map"),
            targets: targets(None, &sources).expect("targets"),
        };
        let subs = s.subscriptions();
        let names: Vec<&str> = subs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["mlflow-write-back", "mlflow-write-back-research"]);
        let (a, b) = (&subs[0], &subs[1]);
        assert_eq!(a.url, "http://mlflow-a:5000");
        assert_eq!(a.kind, DestinationKind::MlflowAlias);
        assert_eq!(a.filter.events, vec!["promotion.applied"]);
        assert_eq!(a.filter.environments, vec!["production", "staging"]);
        assert_eq!(stored_map(&a.options), Ok(s.map.clone()));
        assert!(stored_map(&Value::Null).is_err());
        assert_eq!(
            stored_target(&a.url, &a.options),
            Ok(WriteBackTarget {
                tracking_uri: "http://mlflow-a:5000".into(),
                others: vec!["http://mlflow-b:5000".into()],
                records_skips: true,
            })
        );
        assert_eq!(
            stored_target(&b.url, &b.options),
            Ok(WriteBackTarget {
                tracking_uri: "http://mlflow-b:5000".into(),
                others: vec!["http://mlflow-a:5000".into()],
                records_skips: false,
            })
        );
        // Options stored before several MLflows: the only target.
        assert_eq!(
            stored_target("http://m:5000", &json!({"aliases": {}})),
            Ok(WriteBackTarget::only("http://m:5000"))
        );
        let creds = s.credentials();
        assert_eq!(creds.len(), 1);
        assert!(
            matches!(creds.get("http://mlflow-b:5000"), Some(Credential::Bearer(t)) if t == "tok")
        );
    }

    #[test]
    fn a_write_back_uri_names_the_only_mlflow_written_to_and_no_mlflow_at_all_is_refused() {
        let sources = [
            source("mlflow", "http://mlflow-a:5000", None),
            source(
                "research",
                "http://mlflow-b:5000",
                Some(Credential::Bearer("t".into())),
            ),
        ];
        let only = targets(Some("http://mlflow-b:5000/"), &sources).expect("targets");
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].subscription, "mlflow-write-back");
        assert_eq!(only[0].source, "research");
        assert!(only[0].credential.is_some());
        let none = targets(None, &[]).expect_err("nothing named");
        assert!(format!("{none}").contains("no MLflow is named"), "{none}");
        let scheme = targets(Some("mlflow:5000"), &sources).expect_err("not http");
        assert!(
            format!("{scheme}").contains("http:// or https://"),
            "{scheme}"
        );
        let long = "a".repeat(60);
        let too_long = targets(None, &[source(&long, "http://m:5000", None)]).expect_err("long");
        assert!(
            format!("{too_long}").contains("give the source a shorter name"),
            "{too_long}"
        );
    }
}
