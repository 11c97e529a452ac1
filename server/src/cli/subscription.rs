//! `switchyard subscription add|list|show|remove|test`: notification
//! subscriptions through the REST API of a running server
//! (`SWITCHYARD_URL`, default `http://` + `SWITCHYARD_ADDR`), with an admin's
//! API token in `SWITCHYARD_TOKEN`.

use serde_json::{json, Value};

use super::{Failure, Outcome};

/// Where the server is and the token to call it with.
pub(super) struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    pub(super) fn from_env(addr: std::net::SocketAddr) -> Result<Api, Failure> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let base = var("SWITCHYARD_URL").unwrap_or_else(|| format!("http://{addr}"));
        let token = var("SWITCHYARD_TOKEN").ok_or_else(|| {
            Failure::usage(
                "SWITCHYARD_TOKEN must hold an admin's API token (switchyard token create)",
            )
        })?;
        Ok(Api {
            base: base.trim_end_matches('/').to_owned(),
            token,
            client: reqwest::Client::new(),
        })
    }

    /// Sends the request; an answer that is not 2xx becomes the API's message
    /// (exit 2 for bad input, 1 otherwise).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Failure> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| {
            Failure::refused(format!("cannot reach the server at {}: {e}", self.base))
        })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status.as_u16() == 422 || status.as_u16() == 400 {
            Err(Failure::usage(message))
        } else {
            Err(Failure::refused(message))
        }
    }
}

/// What `subscription add` sends.
pub(super) struct NewSubscription {
    pub name: String,
    pub url: String,
    pub kind: Option<String>,
    pub events: Vec<String>,
    pub models: Vec<String>,
    pub environments: Vec<String>,
    pub clusters: Vec<String>,
    pub parallel: bool,
}

pub(super) async fn add(api: &Api, new: NewSubscription) -> Outcome {
    let body = json!({
        "name": new.name,
        "url": new.url,
        "kind": new.kind,
        "filter": {
            "events": new.events,
            "models": new.models,
            "environments": new.environments,
            "clusters": new.clusters,
        },
        "parallel": new.parallel,
    });
    let created = api
        .call(reqwest::Method::POST, "/api/v1/subscriptions", Some(body))
        .await?;
    match created["secret"].as_str() {
        Some(secret) => {
            eprintln!(
                "subscription {} created ({}); its signing secret is shown once, store it now:",
                new.name,
                created["url"].as_str().unwrap_or("")
            );
            println!("{secret}");
        }
        None => println!(
            "subscription {} created ({})",
            new.name,
            created["url"].as_str().unwrap_or("")
        ),
    }
    Ok(())
}

pub(super) async fn list(api: &Api) -> Outcome {
    let all = api
        .call(reqwest::Method::GET, "/api/v1/subscriptions", None)
        .await?;
    let subscriptions = all["subscriptions"].as_array().cloned().unwrap_or_default();
    if subscriptions.is_empty() {
        println!("no subscriptions");
    }
    for s in subscriptions {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            s["name"].as_str().unwrap_or(""),
            s["kind"].as_str().unwrap_or(""),
            s["status"].as_str().unwrap_or(""),
            s["url"].as_str().unwrap_or(""),
            if s["parallel"].as_bool() == Some(true) { "parallel" } else { "in order" }
        );
    }
    Ok(())
}

pub(super) async fn show(api: &Api, name: &str) -> Outcome {
    let s = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/subscriptions/{name}"),
            None,
        )
        .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&s).map_err(|e| Failure::refused(e.to_string()))?
    );
    Ok(())
}

pub(super) async fn remove(api: &Api, name: &str) -> Outcome {
    api.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/subscriptions/{name}"),
        None,
    )
    .await?;
    println!("subscription {name} removed");
    Ok(())
}

pub(super) async fn test(api: &Api, name: &str) -> Outcome {
    let d = api
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/subscriptions/{name}/test"),
            None,
        )
        .await?;
    println!(
        "test message queued for {name} (delivery {}, webhook-id {})",
        d["id"],
        d["message_id"].as_str().unwrap_or("")
    );
    Ok(())
}
