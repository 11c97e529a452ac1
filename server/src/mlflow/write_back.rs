//! Write-back of promotions to MLflow as aliases (`SWITCHYARD_MLFLOW_WRITE_BACK`).
//!
//! It rides on the notification outbox: a subscription of kind
//! `mlflow-alias` (configured at start-up from the settings, filtered on
//! `promotion.applied` in the mapped environments) gets a delivery written
//! in the transaction of each promotion, claimed by lease and retried with
//! back-off like any other; dead ones are in the ledger and the status
//! endpoint. An attempt sets the aliases in MLflow, reads them back, and
//! the answer is recorded as `mlflow.alias_set` in the same transaction that
//! marks the delivery delivered; a promotion of a version that did not come
//! from this MLflow is recorded as `mlflow.alias_skipped` with the reason.

use serde_json::{json, Value};
use switchyard_domain::ledger::{action, LedgerEvent, NewEvent};
use switchyard_domain::mlflow::{write_back_for, WriteBack, WriteBackMap};
use switchyard_domain::{FullId, Timestamp};

use super::{Client, Credential};
use crate::store::notify::{ClaimedDelivery, DestinationKind, Filter, NewSubscription};
use crate::store::{AuditQuery, DynStore};

/// The subscription that carries the write-back.
pub const SUBSCRIPTION: &str = "mlflow-write-back";

/// `SWITCHYARD_MLFLOW_WRITE_BACK=alias=environment,…` and the tracking
/// server it writes to (`SWITCHYARD_MLFLOW_WRITE_BACK_URI`, by default the
/// followed `SWITCHYARD_MLFLOW_FOLLOW`).
#[derive(Debug, Clone)]
pub struct WriteBackSettings {
    pub tracking_uri: String,
    pub map: WriteBackMap,
}

impl WriteBackSettings {
    pub fn from_env() -> anyhow::Result<Option<WriteBackSettings>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let Some(pairs) = var("SWITCHYARD_MLFLOW_WRITE_BACK") else {
            return Ok(None);
        };
        let map = WriteBackMap::parse(&pairs)
            .map_err(|e| anyhow::anyhow!("SWITCHYARD_MLFLOW_WRITE_BACK: {e}"))?;
        let tracking_uri = var("SWITCHYARD_MLFLOW_WRITE_BACK_URI")
            .or_else(|| var("SWITCHYARD_MLFLOW_FOLLOW"))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "SWITCHYARD_MLFLOW_WRITE_BACK is set but no MLflow is named: set \
                     SWITCHYARD_MLFLOW_FOLLOW or SWITCHYARD_MLFLOW_WRITE_BACK_URI to its tracking URL"
                )
            })?;
        let tracking_uri = tracking_uri.trim().trim_end_matches('/').to_owned();
        if !(tracking_uri.starts_with("http://") || tracking_uri.starts_with("https://")) {
            anyhow::bail!(
                "the MLflow tracking URL must be http:// or https://, not {tracking_uri:?}"
            );
        }
        Ok(Some(WriteBackSettings { tracking_uri, map }))
    }

    /// The subscription these settings define.
    pub fn subscription(&self) -> NewSubscription {
        let aliases: serde_json::Map<String, Value> = self
            .map
            .by_environment
            .iter()
            .map(|(env, aliases)| (env.clone(), json!(aliases)))
            .collect();
        NewSubscription {
            name: SUBSCRIPTION.to_owned(),
            kind: DestinationKind::MlflowAlias,
            url: self.tracking_uri.clone(),
            filter: Filter {
                events: vec![action::PROMOTION_APPLIED.to_owned()],
                environments: self.map.environments(),
                ..Filter::default()
            },
            secret: String::new(),
            options: json!({ "aliases": aliases }),
            // Aliases move in promotion order: a later promotion's alias must win.
            parallel: false,
        }
    }

    /// Creates or updates the write-back's subscription (ledger
    /// `subscription.created` / `subscription.updated`, actor `system`).
    pub async fn configure(
        &self,
        store: &DynStore,
    ) -> anyhow::Result<crate::store::notify::Configured> {
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
        // A second try when another server created it between our read and write.
        let mut last = None;
        for _ in 0..2 {
            match store
                .configure_subscription(self.subscription(), "system", Timestamp::now())
                .await
            {
                Ok((_, done)) => return Ok(done),
                Err(e) => last = Some(e),
            }
        }
        Err(anyhow::anyhow!(
            "cannot configure the MLflow write-back: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        ))
    }
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
    let (Some(model), Some(version), Some(env)) = (&ev.model_id, &ev.version, &ev.environment)
    else {
        return Ok((
            200,
            Some(skipped(
                c,
                ev,
                None,
                "the event names no version and environment".into(),
            )),
        ));
    };
    let full_id = FullId::parse(&format!("{model}:{version}"))
        .map_err(|e| format!("event {} names a bad version: {e}", ev.id))?;
    let v = store
        .get_version(&full_id)
        .await
        .map_err(|e| format!("cannot read {full_id}: {e}"))?;
    let Some(v) = v else {
        return Ok((
            200,
            Some(skipped(
                c,
                ev,
                Some(&full_id),
                format!("{full_id} does not exist"),
            )),
        ));
    };
    let from = imported_from(store, &full_id).await?;
    let (name, mlflow_version, aliases) =
        match write_back_for(&map, env, &v.config, from.as_deref(), client.tracking_uri()) {
            WriteBack::Skip(why) => return Ok((200, Some(skipped(c, ev, Some(&full_id), why)))),
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

    #[test]
    fn the_subscription_carries_the_map_and_listens_to_promotions_in_mapped_environments() {
        let s = WriteBackSettings {
            tracking_uri: "http://mlflow:5000".into(),
            map: WriteBackMap::parse("champion=production,challenger=staging").expect("map"),
        };
        let sub = s.subscription();
        assert_eq!(sub.kind, DestinationKind::MlflowAlias);
        assert_eq!(sub.filter.events, vec!["promotion.applied"]);
        assert_eq!(sub.filter.environments, vec!["production", "staging"]);
        assert_eq!(stored_map(&sub.options), Ok(s.map.clone()));
        assert!(stored_map(&Value::Null).is_err());
    }
}
