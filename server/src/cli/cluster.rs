//! `switchyard cluster add|list|show|test|remove|haproxy-config`: connecting
//! serving clusters, through a running server's REST API with an API token
//! (`SWITCHYARD_URL`, `SWITCHYARD_TOKEN`), so the server checks roles and
//! writes the ledger exactly as for any other client.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::{Failure, Outcome};
use crate::config::Config;
use crate::drivers::oip_haproxy::{haproxy_config, OipHaproxyConfig};

/// A client of one Switchyard server's REST API.
pub(super) struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    /// `SWITCHYARD_URL` (default: `http://` + `SWITCHYARD_ADDR`) and `SWITCHYARD_TOKEN`.
    pub(super) fn from_env(config: &Config) -> Result<Api, Failure> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let base = var("SWITCHYARD_URL")
            .unwrap_or_else(|| format!("http://{}", config.addr))
            .trim_end_matches('/')
            .to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::usage(format!(
                "SWITCHYARD_URL={base:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Failure::refused(format!("cannot build an HTTP client: {e}")))?;
        Ok(Api {
            base,
            token: var("SWITCHYARD_TOKEN").map(|t| t.trim().to_owned()),
            http,
        })
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let token = self.token.as_deref().ok_or_else(|| {
            Failure::usage(
                "set SWITCHYARD_TOKEN to an API token (an admin's for add and remove): \
                 `switchyard token create --user NAME --name NAME` prints one",
            )
        })?;
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method.clone(), &url).bearer_auth(token);
        if let Some(b) = body {
            request = request.json(b);
        }
        let res = request.send().await.map_err(|e| {
            Failure::refused(format!(
                "cannot reach Switchyard at {}: {e} (is `switchyard serve` running there? \
                 SWITCHYARD_URL says where)",
                self.base
            ))
        })?;
        let status = res.status();
        let text = res.text().await.map_err(|e| {
            Failure::refused(format!("{method} {path}: reading the answer failed: {e}"))
        })?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                Failure::refused(format!(
                    "{method} {url} answered HTTP {status} but not in JSON: is SWITCHYARD_URL a Switchyard server?"
                ))
            })?
        };
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        Err(Failure::refused(match status.as_u16() {
            401 => format!("the server refused SWITCHYARD_TOKEN: {message}"),
            _ => message,
        }))
    }
}

/// Reads a driver config: JSON or YAML, from a file or `-` (standard input).
pub(super) fn read_config(path: &Path) -> Result<Value, Failure> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| {
            Failure::usage(format!("cannot read the config from standard input: {e}"))
        })?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?
    };
    // Read as the console's text box is read.
    crate::clusters::parse_config_text(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

pub(super) async fn add(
    api: &Api,
    name: &str,
    environment: &str,
    driver: &str,
    config: Option<&Path>,
) -> Outcome {
    let config = match config {
        Some(p) => read_config(p)?,
        None => json!({}),
    };
    let body =
        json!({ "name": name, "environment": environment, "driver": driver, "config": config });
    api.call(Method::POST, "/api/v1/clusters", Some(&body))
        .await?;
    println!("cluster {name} added ({driver}, environment {environment})");
    println!("check that everything it needs is in place: switchyard cluster test {name}");
    Ok(())
}

pub(super) async fn list(api: &Api) -> Outcome {
    let answer = api.call(Method::GET, "/api/v1/clusters", None).await?;
    let clusters = answer["clusters"].as_array().cloned().unwrap_or_default();
    if clusters.is_empty() {
        println!("no clusters yet: switchyard cluster add NAME --environment ENV --driver KIND --config FILE");
        return Ok(());
    }
    let rows: Vec<[String; 6]> = clusters
        .iter()
        .map(|c| {
            [
                text(&c["name"]),
                text(&c["environment"]),
                text(&c["driver"]),
                slot_text(c, "blue"),
                slot_text(c, "green"),
                c["running_operation"]
                    .as_i64()
                    .map_or("-".to_owned(), |id| format!("{id} running")),
            ]
        })
        .collect();
    print_table(
        [
            "NAME",
            "ENVIRONMENT",
            "DRIVER",
            "BLUE",
            "GREEN",
            "OPERATION",
        ],
        &rows,
    );
    Ok(())
}

pub(super) fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

/// `chat:v2 100%` or `empty`.
fn slot_text(cluster: &Value, slot: &str) -> String {
    let s = cluster["slots"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["slot"] == slot))
        .cloned()
        .unwrap_or(Value::Null);
    let version = s["full_id"].as_str().unwrap_or("empty");
    format!("{version} {}%", s["weight"].as_u64().unwrap_or(0))
}

pub(super) fn print_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub(super) async fn show(api: &Api, name: &str, as_json: bool) -> Outcome {
    let c = api
        .call(
            Method::GET,
            &format!("/api/v1/clusters/{}", segment(name)?),
            None,
        )
        .await?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&c).unwrap_or_else(|_| c.to_string())
        );
        return Ok(());
    }
    let simulated = if c["simulated"] == true {
        " (simulated)"
    } else {
        ""
    };
    println!("cluster      {}", text(&c["name"]));
    println!("environment  {}", text(&c["environment"]));
    println!("driver       {}{simulated}", text(&c["driver"]));
    for slot in ["blue", "green"] {
        let health = c["slots"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["slot"] == slot))
            .and_then(|s| s["health"].as_str())
            .unwrap_or("?")
            .to_owned();
        println!("{slot:<12} {}  ({health})", slot_text(&c, slot));
    }
    match c["router"]["weights"].as_object() {
        Some(w) => println!(
            "router now   blue {}% green {}%",
            w.get("blue").map_or("?".to_owned(), Value::to_string),
            w.get("green").map_or("?".to_owned(), Value::to_string)
        ),
        None => println!("router now   {}", text(&c["router"]["error"])),
    }
    if let Some(id) = c["running_operation"].as_i64() {
        println!("operation    {id} running");
    }
    if let Some(r) = c["rollback_to"].as_str() {
        println!("rollback to  {r}");
    }
    println!(
        "config\n{}",
        serde_json::to_string_pretty(&c["config"]).unwrap_or_default()
    );
    Ok(())
}

pub(super) async fn test(api: &Api, name: &str) -> Outcome {
    let report = api
        .call(
            Method::POST,
            &format!("/api/v1/clusters/{}/test", segment(name)?),
            Some(&json!({})),
        )
        .await?;
    let checks = report["checks"].as_array().cloned().unwrap_or_default();
    for c in &checks {
        let ok = c["ok"] == true;
        println!(
            "{} {}: {}",
            if ok { "ok    " } else { "FAILED" },
            text(&c["check"]),
            text(&c["detail"])
        );
        if let Some(advice) = c["advice"].as_str() {
            println!("       fix: {advice}");
        }
    }
    let failed = checks.iter().filter(|c| c["ok"] != true).count();
    if failed == 0 && report["ok"] == true {
        println!("cluster {name}: all {} checks passed", checks.len());
        Ok(())
    } else {
        Err(Failure::refused(format!(
            "cluster {name}: {failed} of {} checks failed",
            checks.len()
        )))
    }
}

pub(super) async fn remove(api: &Api, name: &str) -> Outcome {
    api.call(
        Method::DELETE,
        &format!("/api/v1/clusters/{}", segment(name)?),
        None,
    )
    .await?;
    println!("cluster {name} removed");
    Ok(())
}

/// Prints the HAProxy configuration the `oip+haproxy` driver's routing
/// contract needs: from a registered cluster's config, or from a config file.
pub(super) async fn haproxy(
    api: Option<&Api>,
    name: Option<&str>,
    config: Option<&Path>,
    bind: &str,
) -> Outcome {
    let value = match (name, config) {
        (_, Some(path)) => read_config(path)?,
        (Some(name), None) => {
            let api = api.ok_or_else(|| Failure::usage("no server to ask"))?;
            let c = api
                .call(
                    Method::GET,
                    &format!("/api/v1/clusters/{}", segment(name)?),
                    None,
                )
                .await?;
            if c["driver"] != "oip+haproxy" {
                return Err(Failure::usage(format!(
                    "cluster {name} uses the {} driver; only oip+haproxy clusters route through HAProxy",
                    text(&c["driver"])
                )));
            }
            c["config"].clone()
        }
        (None, None) => {
            return Err(Failure::usage(
                "name a registered cluster or give its driver config with --config FILE",
            ))
        }
    };
    let config = OipHaproxyConfig::parse(&value).map_err(|e| Failure::usage(e.to_string()))?;
    check_bind(bind)?;
    print!("{}", haproxy_config(&config, bind));
    Ok(())
}

/// `--bind`: HAProxy's `bind` argument, `HOST:PORT` or `*:PORT`.
fn check_bind(bind: &str) -> Result<(), Failure> {
    let port = bind.rsplit_once(':').map(|(_, p)| p);
    match port.and_then(|p| p.parse::<u16>().ok()) {
        Some(p) if p > 0 && !bind.contains(char::is_whitespace) => Ok(()),
        _ => Err(Failure::usage(format!(
            "--bind {bind:?} is not HOST:PORT (e.g. 127.0.0.1:8080 or *:8080)"
        ))),
    }
}

/// A cluster name as one path segment (names are `[a-z0-9-]`; anything else is refused here).
fn segment(name: &str) -> Result<&str, Failure> {
    switchyard_domain::clusters::parse_cluster_name(name)
        .map(|_| name)
        .map_err(|e| Failure::usage(e.to_string()))
}
