//! `cluster test` for `oip+haproxy`: every part the driver needs, checked
//! without changing anything — HAProxy's Runtime API (reachable, level
//! admin), the routing contract (map `active`, backends `be_blue`,
//! `be_green`, `be_split` with servers `blue`/`green`, health checks, the
//! servers' ports), the files Switchyard keeps, the model servers and their
//! repository folders, and each slot's version.

use std::path::Path;

use switchyard_domain::clusters::{ClusterState, SlotName};

use super::haproxy::Stats;
use super::{backend, Deploy, OipHaproxy};
use crate::drivers::{Check, Driver, Running};

/// A backend that cannot exist: `set server` on it is refused with
/// "Permission denied" below level admin and "No such backend" at admin,
/// so the probe tells the level without touching anything.
const LEVEL_PROBE: &str = "set server switchyard-level-probe/none weight 1";

const GENERATE: &str =
    "`switchyard cluster haproxy-config NAME` prints a configuration that follows the contract";

impl OipHaproxy {
    pub(super) async fn contract_checks(&self, state: &ClusterState) -> Vec<Check> {
        let mut checks = Vec::new();
        let admin = self.socket.address().to_string();
        let haproxy_ok = match self.socket.run_raw("show info").await {
            Ok(info) if info.contains("Name: HAProxy") => {
                let version = info
                    .lines()
                    .find_map(|l| l.strip_prefix("Version: "))
                    .unwrap_or("?");
                checks.push(Check::ok(
                    "HAProxy Runtime API",
                    format!("HAProxy {version} answers at {admin}"),
                ));
                true
            }
            Ok(other) => {
                checks.push(Check::failed(
                    "HAProxy Runtime API",
                    format!(
                        "{admin} answered, but not as HAProxy's Runtime API: {:?}",
                        short(&other)
                    ),
                    "point haproxy.socket at the address of HAProxy's `stats socket` line",
                ));
                false
            }
            Err(e) => {
                checks.push(Check::failed(
                    "HAProxy Runtime API",
                    e.to_string(),
                    format!(
                        "start HAProxy with `stats socket {} level admin` in its global section \
                         (is HAProxy running? is the path or port the same in both places?)",
                        self.socket.address().haproxy_bind()
                    ),
                ));
                false
            }
        };
        if haproxy_ok {
            self.haproxy_checks(&mut checks).await;
        }
        self.file_checks(&mut checks).await;
        for slot in SlotName::ALL {
            self.slot_checks(slot, state, haproxy_ok, &mut checks).await;
        }
        checks
    }

    async fn haproxy_checks(&self, checks: &mut Vec<Check>) {
        let admin = self.socket.address().haproxy_bind();
        checks.push(match self.socket.run_raw(LEVEL_PROBE).await {
            Ok(out) if out.contains("Permission denied") => Check::failed(
                "HAProxy admin level",
                "the Runtime API refuses `set server` (its level is below admin)",
                format!("end the `stats socket {admin}` line with `level admin`"),
            ),
            Ok(_) => Check::ok("HAProxy admin level", "`set server` is allowed"),
            Err(e) => Check::failed(
                "HAProxy admin level",
                e.to_string(),
                "check the Runtime API address",
            ),
        });

        let map = self.config.haproxy.route_map.display().to_string();
        let map_use = format!(
            "the frontend must choose its backend with `use_backend %[str(active),map({map},be_blue)]` \
             (the same path as haproxy.route_map), and the file must hold a line `active be_blue`; {GENERATE}"
        );
        checks.push(
            match self.socket.run_raw(&format!("show map {map}")).await {
                Ok(out) if out.contains("Unknown map") => Check::failed(
                    "route map",
                    format!("HAProxy has not loaded a map {map}"),
                    map_use,
                ),
                Ok(out) => {
                    let active = out
                        .lines()
                        .map(|l| l.split_whitespace().collect::<Vec<_>>())
                        .find(|f| f.get(1) == Some(&"active"))
                        .and_then(|f| f.get(2).map(|v| (*v).to_owned()));
                    match active {
                        Some(v) if ["be_blue", "be_green", "be_split"].contains(&v.as_str()) => {
                            Check::ok("route map", format!("{map}: active → {v}"))
                        }
                        Some(v) => Check::failed(
                            "route map",
                            format!(
                                "{map}: active → {v}, which is not be_blue, be_green or be_split"
                            ),
                            map_use,
                        ),
                        None => Check::failed(
                            "route map",
                            format!("{map} has no key `active`"),
                            map_use,
                        ),
                    }
                }
                Err(e) => Check::failed("route map", e.to_string(), map_use),
            },
        );

        let stats = self.socket.stats().await;
        for slot in [Some(SlotName::Blue), Some(SlotName::Green), None] {
            let be = backend(slot);
            let servers: Vec<SlotName> = slot.map_or(SlotName::ALL.to_vec(), |s| vec![s]);
            let expected = servers
                .iter()
                .map(|s| format!("`server {s} …`"))
                .collect::<Vec<_>>()
                .join(" and ");
            let what = format!("HAProxy backend {be}");
            let out = match self
                .socket
                .run_raw(&format!("show servers state {be}"))
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    checks.push(Check::failed(
                        what,
                        e.to_string(),
                        "check the Runtime API address",
                    ));
                    continue;
                }
            };
            if out.contains("Can't find backend") {
                checks.push(Check::failed(
                    what,
                    format!("HAProxy has no backend {be}"),
                    format!("add `backend {be}` with {expected}; the driver's backends are be_blue, be_green and be_split; {GENERATE}"),
                ));
                continue;
            }
            let rows: Vec<Vec<&str>> = out
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .filter(|f| f.len() > 18)
                .collect();
            let names: Vec<&str> = rows.iter().filter_map(|f| f.get(3).copied()).collect();
            let missing: Vec<&SlotName> = servers
                .iter()
                .filter(|s| !names.contains(&s.as_str()))
                .collect();
            if !missing.is_empty() {
                let missing = missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                checks.push(Check::failed(
                    what,
                    format!(
                        "{be} has no server named {missing} (it has: {})",
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names.join(", ")
                        }
                    ),
                    format!("name the servers of {be} {expected}; {GENERATE}"),
                ));
                continue;
            }
            let mut problems = Vec::new();
            for s in &servers {
                let Some(row) = rows.iter().find(|f| f.get(3) == Some(&s.as_str())) else {
                    continue;
                };
                let expected_port = port_of(&self.config.slot(*s).url);
                let port = row.get(18).and_then(|p| p.parse::<u16>().ok());
                if expected_port.is_some() && port != expected_port {
                    problems.push(format!(
                        "server {s} sends to port {} but the {s} model server is {}",
                        port.map_or("?".to_owned(), |p| p.to_string()),
                        self.config.slot(*s).url
                    ));
                }
                match &stats {
                    Ok(stats) if !stats.has_check(be, s.as_str()) => problems.push(format!(
                        "server {s} has no health check (without one HAProxy cannot tell the driver when {s} is up)"
                    )),
                    _ => {}
                }
            }
            checks.push(if problems.is_empty() {
                Check::ok(what, format!("servers {} with health checks", names.join(", ")))
            } else {
                Check::failed(
                    what,
                    problems.join("; "),
                    format!(
                        "in {be}: `option httpchk GET /v2/models/{}/ready`, and each server line \
                         `server SLOT HOST:PORT check` with the slot's model server address; {GENERATE}",
                        self.config.model
                    ),
                )
            });
        }
        if let Err(e) = &stats {
            checks.push(Check::failed(
                "HAProxy counters",
                e.to_string(),
                "the error-rate gate reads `show stat`; check the Runtime API",
            ));
        }
    }

    async fn file_checks(&self, checks: &mut Vec<Check>) {
        let h = &self.config.haproxy;
        if !h.write_files {
            checks.push(Check::ok(
                "route map file",
                "not written by Switchyard (haproxy.write_files is false): routing changes in HAProxy's memory \
                 only, so a restarted HAProxy routes by its own map file until the next switch",
            ));
        }
        let kept: Vec<(&str, &std::path::PathBuf)> = if h.write_files {
            std::iter::once(("route map file", &h.route_map))
                .chain(h.weights_file.as_ref().map(|w| ("weights file", w)))
                .collect()
        } else {
            Vec::new()
        };
        for (what, path) in kept {
            checks.push(match writable_file(path).await {
                Ok(detail) => Check::ok(what, detail),
                Err(e) => Check::failed(
                    what,
                    e,
                    "Switchyard writes this file at every switch so a restarted HAProxy routes the same way: \
                     create its folder and let the Switchyard user write there",
                ),
            });
        }
        // Only slots that copy read the artifacts folder (`parse` requires it then).
        let Some(artifacts) = self.config.artifacts.as_ref().filter(|_| {
            SlotName::ALL
                .into_iter()
                .any(|s| self.config.slot(s).deploy == Deploy::Copy)
        }) else {
            return;
        };
        checks.push(match tokio::fs::metadata(artifacts).await {
            Ok(m) if m.is_dir() => Check::ok(
                "artifacts",
                format!("versions are read from {}/{}/VERSION/", artifacts.display(), self.config.model),
            ),
            Ok(_) => Check::failed(
                "artifacts",
                format!("{} is not a folder", artifacts.display()),
                "point `artifacts` at the folder holding MODEL/VERSION/ folders",
            ),
            Err(e) => Check::failed(
                "artifacts",
                format!("{}: {e}", artifacts.display()),
                "point `artifacts` at the folder holding MODEL/VERSION/ folders (readable by Switchyard)",
            ),
        });
    }

    /// The repository index answers: drift (`Driver::running`) reads what
    /// the slot really runs from it.
    async fn index_check(&self, slot: SlotName) -> Check {
        let what = format!("{slot} repository index");
        match self.running(slot).await {
            Ok(running) => Check::ok(
                what,
                format!(
                    "POST /v2/repository/index answers: {} (what drift is judged from)",
                    match running {
                        Running::Version { version } => format!("{version} loaded and ready"),
                        Running::Nothing => format!("no version of {} ready", self.config.model),
                        Running::Unclear { detail } => detail,
                    }
                ),
            ),
            Err(e) => Check::failed(
                what,
                e.to_string(),
                "Switchyard reads what the slot really runs from the Open Inference Protocol's \
                 repository index: use a model server that offers it (MLServer; Triton with \
                 --model-control-mode=explicit)",
            ),
        }
    }

    async fn slot_checks(
        &self,
        slot: SlotName,
        state: &ClusterState,
        haproxy_ok: bool,
        checks: &mut Vec<Check>,
    ) {
        let url = &self.config.slot(slot).url;
        let server = self.oip(slot);
        let reachable = match server.live().await {
            Ok(()) => {
                checks.push(Check::ok(
                    format!("{slot} model server"),
                    format!("{url} answers the Open Inference Protocol"),
                ));
                true
            }
            Err(e) => {
                checks.push(Check::failed(
                    format!("{slot} model server"),
                    e.to_string(),
                    format!("start the {slot} model server (e.g. `mlserver start DIR` with http_port as in {url}) or correct {slot}.url"),
                ));
                false
            }
        };
        if reachable {
            checks.push(self.index_check(slot).await);
        }
        let config = self.config.slot(slot);
        match (config.deploy, &config.repository, &config.loader) {
            (Deploy::Copy, Some(repo), _) => checks.push(match writable_dir(repo).await {
                Ok(()) => Check::ok(
                    format!("{slot} repository"),
                    format!("{} is writable", repo.display()),
                ),
                Err(e) => Check::failed(
                    format!("{slot} repository"),
                    e,
                    format!(
                        "{slot}.repository must be the {slot} model server's model repository folder, \
                         writable by Switchyard (it copies version folders there); for a model server \
                         on another host, set {slot}.deploy to \"artifact_uri\" with a loader instead"
                    ),
                ),
            }),
            (Deploy::ArtifactUri, _, Some(base)) => {
                let loader = super::loader::Loader {
                    http: &self.http,
                    base,
                    model: &self.config.model,
                };
                checks.push(match loader.health().await {
                    Ok(()) => Check::ok(
                        format!("{slot} loader"),
                        format!(
                            "Switchyard's loader answers at {base}: the {slot} model server reads each \
                             version from its artifact_uri (file:// or a path on its host)"
                        ),
                    ),
                    Err(e) => Check::failed(
                        format!("{slot} loader"),
                        e,
                        format!(
                            "run the {slot} model server with Switchyard's loader: contrib/mlserver/switchyard_loader.py \
                             on its PYTHONPATH and, in its settings.json, \"model_repository_implementation\": \
                             \"switchyard_loader.ArtifactRepository\", \"model_repository_implementation_args\": \
                             {{\"listen\": \"HOST:PORT\"}} — the address {slot}.loader names"
                        ),
                    ),
                });
            }
            // `parse` refuses the other combinations.
            _ => {}
        }
        let what = format!("slot {slot}");
        let Some(v) = state.version(slot) else {
            checks.push(Check::ok(what, "empty: nothing deployed yet"));
            return;
        };
        if !reachable {
            checks.push(Check::failed(
                what,
                format!("{v} not checked: the model server is unreachable"),
                "start the model server",
            ));
            return;
        }
        let ready = server.version_ready(v.version.as_str()).await;
        let up = if haproxy_ok {
            self.socket
                .server_up(backend(Some(slot)), slot.as_str())
                .await
                .map_err(|e| e.to_string())
        } else {
            Err("the Runtime API is unreachable".to_owned())
        };
        checks.push(match (ready, up) {
            (Ok(true), Ok(true)) => Check::ok(what, format!("{v} ready, HAProxy reports {slot} UP")),
            (Ok(true), Err(why)) => Check::failed(
                what,
                format!("{v} ready; HAProxy cannot say whether {slot} is UP ({why})"),
                "fix the HAProxy checks above",
            ),
            (Ok(true), Ok(false)) => Check::failed(
                what,
                format!("{v} ready, but HAProxy reports {slot} down"),
                format!("HAProxy's health check of {slot} fails: it must GET /v2/models/{}/ready at {url}", self.config.model),
            ),
            (Ok(false), _) => Check::failed(
                what,
                format!("{v} does not answer ready at {url}"),
                format!("the model server lost {v} (restarted?): deploy it again or roll back"),
            ),
            (Err(e), _) => Check::failed(what, e.to_string(), "check the model server"),
        });
    }
}

impl Stats {
    /// Whether `server` of `backend` has a health check (`check_status` is
    /// empty for a server without `check`).
    fn has_check(&self, backend: &str, server: &str) -> bool {
        self.value(backend, server, "check_status")
            .is_some_and(|v| !v.is_empty())
    }
}

fn port_of(url: &str) -> Option<u16> {
    let parsed = reqwest::Url::parse(url).ok()?;
    parsed.port_or_known_default()
}

async fn writable_dir(dir: &Path) -> Result<(), String> {
    match tokio::fs::metadata(dir).await {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(format!("{} is not a folder", dir.display())),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let probe = dir.join(format!(".switchyard-probe-{:08x}", rand::random::<u32>()));
    tokio::fs::write(&probe, b"")
        .await
        .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
    let _ = tokio::fs::remove_file(&probe).await;
    Ok(())
}

async fn writable_file(path: &Path) -> Result<String, String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    writable_dir(dir).await?;
    match tokio::fs::metadata(path).await {
        Ok(m) if m.permissions().readonly() => Err(format!("{} is read-only", path.display())),
        Ok(_) => Ok(format!("{} is writable", path.display())),
        Err(_) => Ok(format!(
            "{} will be created in a writable folder",
            path.display()
        )),
    }
}

fn short(s: &str) -> &str {
    let end = s.char_indices().nth(120).map_or(s.len(), |(i, _)| i);
    &s[..end]
}
