//! The `oip+haproxy` driver: each slot is a model server speaking the Open
//! Inference Protocol (KServe V2; tested with MLServer 1.7.1), and HAProxy
//! routes between them, driven through its Runtime API on the admin socket.
//!
//! Routing contract (see [`haproxy_config`]): the frontend picks its backend
//! from a map file (`active` → `be_blue`, `be_green` or `be_split`); an atomic
//! switch is one `set map`. Rolling steps set the weights of the two servers
//! of `be_split` and point the map at it. Every change is also written to the
//! map and weights files, so a restarted HAProxy routes the same way.
//!
//! Switch order (measured to drop no request): load the version into the
//! idle slot → wait for its per-version ready endpoint → wait until HAProxy
//! itself reports the server UP → `set map`. The old slot keeps its version
//! loaded: it is the rollback target.

mod contract;
mod haproxy;
mod loader;
mod oip;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use switchyard_domain::clusters::{ClusterState, SlotName, Weights};
use switchyard_domain::{DomainError, FullId};

pub use haproxy::{haproxy_config, AdminAddress};

use super::{Driver, DriverError, DriverResult, Observed, Running, SlotHealth};
use switchyard_domain::operations::{GatePolicy, Traffic};

/// How a version reaches a slot's model server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deploy {
    /// Switchyard copies `ARTIFACTS/MODEL/VERSION/` into the model server's
    /// repository folder (on Switchyard's filesystem), then asks it to load.
    #[default]
    Copy,
    /// The model server reads the version itself from the version's
    /// `artifact_uri`: Switchyard tells the server's loader (for MLServer,
    /// `contrib/mlserver/switchyard_loader.py`) which version and URI, then
    /// asks the server to load. Nothing is written into the server's folders.
    ArtifactUri,
}

impl Deploy {
    pub fn as_str(self) -> &'static str {
        match self {
            Deploy::Copy => "copy",
            Deploy::ArtifactUri => "artifact_uri",
        }
    }
}

/// One slot: where its model server listens and how versions reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    /// e.g. `http://127.0.0.1:18081`
    pub url: String,
    /// `copy` (default) or `artifact_uri`.
    #[serde(default)]
    pub deploy: Deploy,
    /// `copy`: the model server's repository root; the driver puts version folders in it.
    pub repository: Option<PathBuf>,
    /// `artifact_uri`: the model server's Switchyard loader, e.g. `http://10.0.0.5:9181`.
    pub loader: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyConfig {
    /// HAProxy's Runtime API: a Unix socket path (`stats socket PATH level admin`)
    /// or `tcp://HOST:PORT` (`stats socket ipv4@HOST:PORT level admin`).
    #[serde(alias = "admin")]
    pub socket: String,
    /// The map file the frontend reads `active` from.
    pub route_map: PathBuf,
    /// Where the weights of `be_split` are kept for a restart (`blue N` / `green N`);
    /// needed unless `write_files` is false.
    pub weights_file: Option<PathBuf>,
    /// Whether Switchyard rewrites the map and weights files at every switch
    /// (default true), so a restarted HAProxy routes the same way. False when
    /// HAProxy runs on another host (Runtime API over TCP) and its files are
    /// not on Switchyard's filesystem: routing then changes in memory only.
    #[serde(default = "default_true")]
    pub write_files: bool,
}

fn is_http(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

fn default_true() -> bool {
    true
}

/// `config` of an `oip+haproxy` cluster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OipHaproxyConfig {
    /// The OIP model name the cluster serves (the model id of its versions).
    pub model: String,
    pub blue: SlotConfig,
    pub green: SlotConfig,
    /// Version folders to deploy from: `ARTIFACTS/MODEL/VERSION/` (slots that `copy`).
    pub artifacts: Option<PathBuf>,
    pub haproxy: HaproxyConfig,
    /// The inference request body sent as the smoke test (a default BYTES input if absent).
    pub smoke_request: Option<serde_json::Value>,
    /// The error-rate gate of rolling updates, judged on HAProxy's counters (`show stat`).
    #[serde(default)]
    pub health_gate: switchyard_domain::operations::GatePolicy,
}

impl OipHaproxyConfig {
    pub fn parse(config: &serde_json::Value) -> Result<OipHaproxyConfig, DomainError> {
        let c: OipHaproxyConfig = serde_json::from_value(config.clone())
            .map_err(|e| DomainError::Invalid(format!("oip+haproxy driver config: {e}")))?;
        switchyard_domain::ModelId::parse(&c.model)?;
        c.admin_address()?;
        if c.haproxy.write_files && c.haproxy.weights_file.is_none() {
            return Err(DomainError::Invalid(
                "oip+haproxy driver config: haproxy.weights_file is missing: Switchyard keeps be_split's \
                 weights there for a restart (or set haproxy.write_files to false when HAProxy's files \
                 are not on Switchyard's filesystem)"
                    .to_owned(),
            ));
        }
        let invalid = |m: String| {
            Err(DomainError::Invalid(format!(
                "oip+haproxy driver config: {m}"
            )))
        };
        for slot in SlotName::ALL {
            let s = c.slot(slot);
            if !is_http(&s.url) {
                return invalid(format!(
                    "slot url {:?} must start with http:// or https://",
                    s.url
                ));
            }
            match s.deploy {
                Deploy::Copy => {
                    if s.repository.is_none() {
                        return invalid(format!(
                            "{slot}.repository is missing: with deploy \"copy\" (the default) Switchyard copies \
                             version folders into the model server's repository folder; name it, or set \
                             {slot}.deploy to \"artifact_uri\" with {slot}.loader when the model server reads \
                             versions from their artifact_uri itself"
                        ));
                    }
                    if s.loader.is_some() {
                        return invalid(format!(
                            "{slot}.loader is only used with {slot}.deploy \"artifact_uri\": remove it or set deploy"
                        ));
                    }
                    if c.artifacts.is_none() {
                        return invalid(format!(
                            "artifacts is missing: slot {slot} deploys by copy, from ARTIFACTS/MODEL/VERSION/ \
                             (or set {slot}.deploy to \"artifact_uri\")"
                        ));
                    }
                }
                Deploy::ArtifactUri => {
                    match &s.loader {
                        None => {
                            return invalid(format!(
                                "{slot}.loader is missing: with deploy \"artifact_uri\" Switchyard tells the model \
                                 server's loader (contrib/mlserver/switchyard_loader.py, its `listen` address) \
                                 which version to read, e.g. \"http://HOST:9181\""
                            ))
                        }
                        Some(l) if !is_http(l) => {
                            return invalid(format!(
                                "{slot}.loader {l:?} must start with http:// or https://"
                            ))
                        }
                        Some(_) => {}
                    }
                    if s.repository.is_some() {
                        return invalid(format!(
                            "{slot}.repository is not used with {slot}.deploy \"artifact_uri\" (Switchyard \
                             writes nothing into the model server's folders): remove it"
                        ));
                    }
                }
            }
        }
        Ok(c)
    }

    /// Where HAProxy's Runtime API listens (`haproxy.socket`).
    pub fn admin_address(&self) -> Result<AdminAddress, DomainError> {
        AdminAddress::parse(&self.haproxy.socket)
            .map_err(|e| DomainError::Invalid(format!("oip+haproxy driver config: {e}")))
    }

    pub fn slot(&self, slot: SlotName) -> &SlotConfig {
        match slot {
            SlotName::Blue => &self.blue,
            SlotName::Green => &self.green,
        }
    }
}

pub struct OipHaproxy {
    config: OipHaproxyConfig,
    http: reqwest::Client,
    socket: haproxy::Socket,
}

/// Backend names of the routing contract.
pub fn backend(slot: Option<SlotName>) -> &'static str {
    match slot {
        Some(SlotName::Blue) => "be_blue",
        Some(SlotName::Green) => "be_green",
        None => "be_split",
    }
}

impl OipHaproxy {
    pub fn new(config: OipHaproxyConfig) -> DriverResult<OipHaproxy> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| DriverError::new(format!("cannot build the HTTP client: {e}")))?;
        let socket = haproxy::Socket::new(
            config
                .admin_address()
                .map_err(|e| DriverError::new(e.to_string()))?,
        );
        Ok(OipHaproxy {
            config,
            http,
            socket,
        })
    }

    fn check_model(&self, full_id: &FullId) -> DriverResult<()> {
        if full_id.model_id.as_str() != self.config.model {
            return Err(DriverError::new(format!(
                "this cluster serves model {}, not {}",
                self.config.model, full_id.model_id
            )));
        }
        Ok(())
    }

    fn oip(&self, slot: SlotName) -> oip::Server<'_> {
        oip::Server {
            http: &self.http,
            base: self.config.slot(slot).url.trim_end_matches('/'),
            model: &self.config.model,
        }
    }

    /// Puts exactly `full_id`'s folder into the slot's repository.
    async fn stage(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        // Both are there for a slot that copies (checked by `parse`).
        let (Some(artifacts), Some(repository)) = (
            self.config.artifacts.as_ref(),
            self.config.slot(slot).repository.as_ref(),
        ) else {
            return Err(DriverError::new(format!(
                "{slot} deploys by copy but the config lacks artifacts or {slot}.repository"
            )));
        };
        let from = artifacts
            .join(&self.config.model)
            .join(full_id.version.as_str());
        let model_dir = repository.join(&self.config.model);
        let to = model_dir.join(full_id.version.as_str());
        let io = |what: &str, p: &Path, e: std::io::Error| {
            DriverError::new(format!("{what} {}: {e}", p.display()))
        };
        if !tokio::fs::try_exists(&from).await.unwrap_or(false) {
            return Err(DriverError::new(format!(
                "no artifact for {full_id} at {}",
                from.display()
            )));
        }
        match tokio::fs::remove_dir_all(&model_dir).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("cannot clear", &model_dir, e))
            }
            _ => {}
        }
        copy_dir(&from, &to)
            .await
            .map_err(|e| io("cannot copy the artifact to", &to, e))
    }

    async fn haproxy_up(&self, slot: SlotName) -> DriverResult<bool> {
        for be in [backend(Some(slot)), backend(None)] {
            if !self.socket.server_up(be, slot.as_str()).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

async fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    tokio::fs::create_dir_all(to).await?;
    let mut entries = tokio::fs::read_dir(from).await?;
    while let Some(e) = entries.next_entry().await? {
        let target = to.join(e.file_name());
        if e.file_type().await?.is_dir() {
            Box::pin(copy_dir(&e.path(), &target)).await?;
        } else {
            tokio::fs::copy(e.path(), target).await?;
        }
    }
    Ok(())
}

/// Polls `check` every 50 ms until it is true or `timeout` passes.
async fn poll<F, Fut>(timeout: Duration, what: &str, mut check: F) -> DriverResult<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = DriverResult<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => last = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            let why = last.map_or(String::new(), |e| format!(" ({e})"));
            return Err(DriverError::new(format!(
                "{what} within {} s{why}",
                timeout.as_secs_f32()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[async_trait]
impl Driver for OipHaproxy {
    async fn test(&self, state: &ClusterState) -> Vec<super::Check> {
        self.contract_checks(state).await
    }

    async fn load(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.load_from(slot, full_id, None).await
    }

    async fn load_from(
        &self,
        slot: SlotName,
        full_id: &FullId,
        artifact_uri: Option<&str>,
    ) -> DriverResult<()> {
        self.check_model(full_id)?;
        let config = self.config.slot(slot);
        match config.deploy {
            Deploy::Copy => self.stage(slot, full_id).await?,
            Deploy::ArtifactUri => {
                let Some(uri) = artifact_uri.filter(|u| !u.trim().is_empty()) else {
                    return Err(DriverError::new(format!(
                        "{full_id} has no artifact_uri, and {slot}'s model server reads versions from their \
                         artifact_uri (deploy \"artifact_uri\"): register the version with one"
                    )));
                };
                // The loader checks the URI on the model server's host before
                // anything is unloaded: a wrong URI leaves the slot as it was.
                loader::Loader {
                    http: &self.http,
                    base: config.loader.as_deref().unwrap_or_default(),
                    model: &self.config.model,
                }
                .point(full_id.version.as_str(), uri)
                .await?;
            }
        }
        let server = self.oip(slot);
        // Unload first: a load only adds versions, and the slot must hold exactly this one.
        server.unload().await?;
        server.load().await
    }

    async fn unload(&self, slot: SlotName) -> DriverResult<()> {
        // HAProxy's health check marks the slot's server down: it has no traffic.
        self.oip(slot).unload().await
    }

    async fn wait_ready(
        &self,
        slot: SlotName,
        full_id: &FullId,
        timeout: Duration,
    ) -> DriverResult<()> {
        self.check_model(full_id)?;
        let server = self.oip(slot);
        let v = full_id.version.as_str();
        poll(
            timeout,
            &format!("{full_id} in {slot} did not become ready"),
            || server.version_ready(v),
        )
        .await?;
        // The model server being ready is not enough: HAProxy must have seen it
        // up too, or requests fall through while its health check catches up.
        poll(
            timeout,
            &format!("HAProxy did not report {slot} UP"),
            || self.haproxy_up(slot),
        )
        .await
    }

    async fn smoke(&self, slot: SlotName, full_id: &FullId) -> DriverResult<()> {
        self.check_model(full_id)?;
        let answered = self
            .oip(slot)
            .infer(full_id.version.as_str(), self.config.smoke_request.as_ref())
            .await?;
        if answered != full_id.version.as_str() {
            return Err(DriverError::new(format!(
                "the smoke request to {slot} was answered by version {answered:?}, not {}",
                full_id.version
            )));
        }
        Ok(())
    }

    async fn shift(&self, weights: Weights) -> DriverResult<()> {
        let map = self.config.haproxy.route_map.display().to_string();
        let target = backend(weights.sole());
        let mut commands = Vec::new();
        if weights.sole().is_none() {
            for slot in SlotName::ALL {
                commands.push(format!(
                    "set server {}/{} weight {}",
                    backend(None),
                    slot,
                    weights.of(slot)
                ));
            }
        }
        commands.push(format!("set map {map} active {target}"));
        // Files first: if HAProxy restarts between the two, it comes back to the new routing.
        if self.config.haproxy.write_files {
            haproxy::write_files(&self.config.haproxy, target, weights).await?;
        }
        self.socket.run(&commands.join("; ")).await.map(|_| ())
    }

    async fn gate(&self, state: &ClusterState) -> DriverResult<()> {
        for (slot, v, _) in state.serving() {
            if !self.oip(slot).version_ready(v.version.as_str()).await? {
                return Err(DriverError::new(format!("{v} in {slot} is not ready")));
            }
            if !self.haproxy_up(slot).await? {
                return Err(DriverError::new(format!("HAProxy reports {slot} down")));
            }
        }
        Ok(())
    }

    async fn observe(&self) -> DriverResult<Observed> {
        let active = self
            .socket
            .map_value(&self.config.haproxy.route_map, "active")
            .await?;
        let weights = match active.as_str() {
            "be_blue" => Weights::all_on(SlotName::Blue),
            "be_green" => Weights::all_on(SlotName::Green),
            _ => {
                let b = self.socket.server_weight(backend(None), "blue").await?;
                let g = self.socket.server_weight(backend(None), "green").await?;
                Weights::new(b, g).map_err(|e| DriverError::new(e.to_string()))?
            }
        };
        Ok(Observed { weights })
    }

    /// What the slot's model server has loaded and ready: its repository
    /// index (`POST /v2/repository/index`) names the versions of the model
    /// it calls READY, and each is confirmed by its per-version ready
    /// endpoint (MLServer judges an index entry's state by model name only).
    async fn running(&self, slot: SlotName) -> DriverResult<Running> {
        let server = self.oip(slot);
        let index = server.index().await?;
        let mut confirmed = Vec::new();
        for v in oip::ready_candidates(&self.config.model, &index) {
            if server.version_ready(v).await? {
                confirmed.push(v);
            }
        }
        Ok(oip::running_of(&self.config.model, &index, &confirmed))
    }

    async fn traffic(&self, slot: SlotName) -> DriverResult<Traffic> {
        // The slot's server in its own backend (atomic switches) and in the
        // split backend (rolling steps): requests go through one or the other.
        let stats = self.socket.stats().await?;
        let mut total = Traffic::default();
        for be in [backend(Some(slot)), backend(None)] {
            let t = stats.server(be, slot.as_str())?;
            total.requests += t.requests;
            total.errors += t.errors;
        }
        Ok(total)
    }

    fn gate_policy(&self) -> GatePolicy {
        self.config.health_gate
    }

    async fn slot_health(
        &self,
        slot: SlotName,
        version: Option<&FullId>,
    ) -> DriverResult<SlotHealth> {
        let Some(v) = version else {
            return Ok(SlotHealth::Empty);
        };
        if !self.oip(slot).version_ready(v.version.as_str()).await? {
            return Ok(SlotHealth::NotReady(format!(
                "{v} does not answer ready at {}",
                self.config.slot(slot).url
            )));
        }
        if !self
            .socket
            .server_up(backend(Some(slot)), slot.as_str())
            .await?
        {
            return Ok(SlotHealth::NotReady(format!("HAProxy reports {slot} down")));
        }
        Ok(SlotHealth::Ready)
    }
}
