//! HAProxy's Runtime API over its admin socket, the files that keep routing
//! across a restart, and the configuration the routing contract expects.

use std::path::PathBuf;

use switchyard_domain::clusters::{SlotName, Weights};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

use super::{backend, HaproxyConfig, OipHaproxyConfig};
use crate::drivers::{DriverError, DriverResult};
use switchyard_domain::operations::Traffic;

/// Where HAProxy's Runtime API listens: a Unix socket path, or
/// `tcp://HOST:PORT` (`stats socket ipv4@HOST:PORT level admin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAddress {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl AdminAddress {
    /// Reads the driver config's `haproxy.socket`.
    pub fn parse(text: &str) -> Result<AdminAddress, String> {
        let form = "use a Unix socket path (e.g. /run/haproxy/admin.sock) or tcp://HOST:PORT \
                    (e.g. tcp://127.0.0.1:9999, for `stats socket ipv4@127.0.0.1:9999 level admin`)";
        let text = text.trim();
        if text.is_empty() {
            return Err(format!("haproxy.socket is empty: {form}"));
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| format!("haproxy.socket {text:?} has no port: {form}"))?;
            let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                format!("haproxy.socket {text:?}: {port:?} is not a port (1-65535)")
            })?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || host.contains('/') {
                return Err(format!("haproxy.socket {text:?} has no host: {form}"));
            }
            return Ok(AdminAddress::Tcp {
                host: host.to_owned(),
                port,
            });
        }
        if text.contains("://") || text.starts_with("ipv4@") || text.starts_with("ipv6@") {
            return Err(format!("haproxy.socket {text:?} is not understood: {form}"));
        }
        Ok(AdminAddress::Unix(PathBuf::from(text)))
    }

    /// The `stats socket` argument of HAProxy's configuration.
    pub fn haproxy_bind(&self) -> String {
        match self {
            AdminAddress::Unix(p) => p.display().to_string(),
            AdminAddress::Tcp { host, port } if host.contains(':') => {
                format!("ipv6@[{host}]:{port}")
            }
            AdminAddress::Tcp { host, port } => format!("ipv4@{host}:{port}"),
        }
    }
}

impl std::fmt::Display for AdminAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAddress::Unix(p) => write!(f, "{}", p.display()),
            AdminAddress::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            AdminAddress::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
        }
    }
}

pub(super) struct Socket {
    address: AdminAddress,
}

/// `srv_op_state` of a server that is UP, in `show servers state`.
const SRV_RUNNING: &str = "2";

/// How long connecting to the admin socket may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Answers of the Runtime API that mean a command was refused.
const REFUSED: [&str; 11] = [
    "Unknown",
    "unknown",
    "No such",
    "not found",
    "Require",
    "invalid",
    "cannot",
    "Can't",
    "must be",
    "Permission denied",
    "denied",
];

impl Socket {
    pub fn new(address: AdminAddress) -> Socket {
        Socket { address }
    }

    pub fn address(&self) -> &AdminAddress {
        &self.address
    }

    /// Runs one command line (commands separated by `;`) and returns the answer.
    pub async fn run(&self, command: &str) -> DriverResult<String> {
        let out = self.run_raw(command).await?;
        if REFUSED.iter().any(|r| out.contains(r)) {
            return Err(DriverError::new(format!(
                "HAProxy refused {command:?}: {}",
                out.trim()
            )));
        }
        Ok(out)
    }

    /// Runs one command and returns the answer unchecked (for answers, like
    /// `show stat`, whose data may contain words that mean a refusal elsewhere).
    pub(super) async fn run_raw(&self, command: &str) -> DriverResult<String> {
        let fail = |e: std::io::Error| {
            DriverError::new(format!("HAProxy admin socket {}: {e}", self.address))
        };
        let line = format!("{command}\n");
        // Non-interactive mode: HAProxy answers and closes the connection.
        let mut out = String::new();
        match &self.address {
            AdminAddress::Unix(path) => {
                let mut s = UnixStream::connect(path).await.map_err(fail)?;
                s.write_all(line.as_bytes()).await.map_err(fail)?;
                s.read_to_string(&mut out).await.map_err(fail)?;
            }
            AdminAddress::Tcp { host, port } => {
                let connect = TcpStream::connect((host.as_str(), *port));
                let mut s = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                    .await
                    .map_err(|_| {
                        fail(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()),
                        ))
                    })?
                    .map_err(fail)?;
                s.set_nodelay(true).map_err(fail)?;
                s.write_all(line.as_bytes()).await.map_err(fail)?;
                s.read_to_string(&mut out).await.map_err(fail)?;
            }
        }
        Ok(out)
    }

    fn state_line<'a>(out: &'a str, server: &str) -> Option<Vec<&'a str>> {
        out.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(3) == Some(&server))
    }

    /// Whether HAProxy's own health check has `server` of `backend` UP.
    pub async fn server_up(&self, backend: &str, server: &str) -> DriverResult<bool> {
        let out = self.run(&format!("show servers state {backend}")).await?;
        Ok(Socket::state_line(&out, server).and_then(|f| f.get(5).copied()) == Some(SRV_RUNNING))
    }

    pub async fn server_weight(&self, backend: &str, server: &str) -> DriverResult<u8> {
        let out = self.run(&format!("show servers state {backend}")).await?;
        // Columns: … srv_op_state srv_admin_state srv_uweight srv_iweight …
        Socket::state_line(&out, server)
            .and_then(|f| f.get(7).and_then(|w| w.parse().ok()))
            .ok_or_else(|| DriverError::new(format!("HAProxy does not list {backend}/{server}")))
    }

    pub async fn map_value(&self, map: &std::path::Path, key: &str) -> DriverResult<String> {
        let out = self.run(&format!("show map {}", map.display())).await?;
        // Lines: `0x55d0… active be_green`
        out.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.get(1) == Some(&key))
            .and_then(|f| f.get(2).map(|v| (*v).to_owned()))
            .ok_or_else(|| DriverError::new(format!("HAProxy map {} has no {key}", map.display())))
    }
}

/// HAProxy's counters (`show stat`), as CSV rows keyed by column name.
pub(super) struct Stats {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Socket {
    pub async fn stats(&self) -> DriverResult<Stats> {
        Stats::parse(&self.run_raw("show stat").await?)
    }
}

impl Stats {
    fn parse(out: &str) -> DriverResult<Stats> {
        let mut lines = out.lines().filter(|l| !l.trim().is_empty());
        let header = lines
            .next()
            .and_then(|h| h.strip_prefix("# "))
            .ok_or_else(|| {
                DriverError::new("HAProxy `show stat` answered without its header line")
            })?;
        Ok(Stats {
            columns: header.split(',').map(str::to_owned).collect(),
            rows: lines
                .map(|l| l.split(',').map(str::to_owned).collect())
                .collect(),
        })
    }

    /// One column of `server`'s row in `backend`, if listed.
    pub fn value(&self, backend: &str, server: &str, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows
            .iter()
            .find(|r| {
                r.first().map(String::as_str) == Some(backend)
                    && r.get(1).map(String::as_str) == Some(server)
            })
            .and_then(|r| r.get(i))
            .map(String::as_str)
    }

    /// Requests that `server` of `backend` answered (any status, or a
    /// connection or response error) and how many of them failed (5xx or error).
    pub fn server(&self, backend: &str, server: &str) -> DriverResult<Traffic> {
        let row = self
            .rows
            .iter()
            .find(|r| {
                r.first().map(String::as_str) == Some(backend)
                    && r.get(1).map(String::as_str) == Some(server)
            })
            .ok_or_else(|| {
                DriverError::new(format!(
                    "HAProxy `show stat` does not list {backend}/{server}"
                ))
            })?;
        let get = |name: &str| -> u64 {
            self.columns
                .iter()
                .position(|c| c == name)
                .and_then(|i| row.get(i))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let answered: u64 = [
            "hrsp_1xx",
            "hrsp_2xx",
            "hrsp_3xx",
            "hrsp_4xx",
            "hrsp_5xx",
            "hrsp_other",
        ]
        .iter()
        .map(|c| get(c))
        .sum();
        let broken = get("econ") + get("eresp");
        Ok(Traffic {
            requests: answered + broken,
            errors: get("hrsp_5xx") + broken,
        })
    }
}

async fn write_atomically(path: &std::path::Path, text: String) -> DriverResult<()> {
    let tmp = path.with_extension("tmp");
    let fail =
        |e: std::io::Error| DriverError::new(format!("cannot write {}: {e}", path.display()));
    tokio::fs::write(&tmp, text).await.map_err(fail)?;
    tokio::fs::rename(&tmp, path).await.map_err(fail)
}

/// Writes the map and weights files to match the routing being set.
pub(super) async fn write_files(
    h: &HaproxyConfig,
    active: &str,
    weights: Weights,
) -> DriverResult<()> {
    write_atomically(&h.route_map, format!("active {active}\n")).await?;
    if let Some(file) = &h.weights_file {
        write_atomically(
            file,
            format!("blue {}\ngreen {}\n", weights.blue, weights.green),
        )
        .await?;
    }
    Ok(())
}

/// Reads the weights file (50/50 if absent or unreadable: only used while split).
fn saved_weights(h: &HaproxyConfig) -> Weights {
    let text = h
        .weights_file
        .as_ref()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let get = |slot: &str| {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == slot)
            .and_then(|(_, v)| v.trim().parse::<u8>().ok())
    };
    match (get("blue"), get("green")) {
        (Some(b), Some(g)) => Weights::new(b, g).unwrap_or(Weights {
            blue: 50,
            green: 50,
        }),
        _ => Weights {
            blue: 50,
            green: 50,
        },
    }
}

/// An HAProxy configuration that follows the routing contract for `c`,
/// listening on `bind` (e.g. `127.0.0.1:8080`). It takes the split weights
/// from the weights file, so a restart keeps them; the map file holds the
/// active backend. Each answer carries `X-Slot` naming the slot that served it.
pub fn haproxy_config(c: &OipHaproxyConfig, bind: &str) -> String {
    let h = &c.haproxy;
    let w = saved_weights(h);
    let addr = |slot: SlotName| {
        let url = &c.slot_url(slot);
        url.trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned()
    };
    let check = format!(
        "    option httpchk GET /v2/models/{}/ready\n    http-check expect status 200\n",
        c.model
    );
    // Fast checks: a slot must be seen UP before traffic is switched to it.
    // A check may take up to `timeout check` to answer (a model server busy
    // on 2 shared cores can take longer than the 100 ms interval; such a slot
    // is slow, not down).
    let srv = |slot: SlotName, weight: Option<u8>| {
        let weight = weight.map_or(String::new(), |w| format!(" weight {w}"));
        format!(
            "    server {slot} {} check inter 100ms fall 2 rise 1{weight}\n",
            addr(slot)
        )
    };
    let mut out = format!(
        "# Switchyard routing contract for model {model} (oip+haproxy driver).\n\
         # Keep these names: backends be_blue, be_green, be_split; servers blue and green;\n\
         # the map key `active`. Before starting HAProxy, create the map file:\n\
         #     echo 'active be_blue' > {map}\n\
         # Switchyard changes routing through the Runtime API below and rewrites the map\n\
         # and weights files, so a restarted HAProxy routes the same way.\n\
         # Check with: switchyard cluster test NAME\n\n\
         global\n    stats socket {} level admin\n    maxconn 4096\n\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    timeout check 2s\n    \
         retries 3\n    option redispatch\n\n\
         frontend fe\n    bind {bind}\n    use_backend %[str(active),map({},be_blue)]\n\n",
        c.admin_address().map_or_else(|_| h.socket.clone(), |a| a.haproxy_bind()),
        h.route_map.display(),
        model = c.model,
        map = h.route_map.display(),
    );
    for slot in SlotName::ALL {
        out.push_str(&format!(
            "backend {}\n{check}    http-response set-header X-Slot {slot}\n{}\n",
            backend(Some(slot)),
            srv(slot, None)
        ));
    }
    out.push_str(&format!(
        "backend {}\n    balance roundrobin\n{check}    http-response set-header X-Slot %s\n{}{}",
        backend(None),
        srv(SlotName::Blue, Some(w.blue)),
        srv(SlotName::Green, Some(w.green))
    ));
    out
}

impl OipHaproxyConfig {
    fn slot_url(&self, slot: SlotName) -> String {
        self.slot(slot).url.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_stat_counts_answers_and_errors_of_one_server() {
        let out = "# pxname,svname,qcur,econ,eresp,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,\n\
                   be_green,green,0,1,2,0,90,0,3,4,0,\n\
                   be_green,BACKEND,0,1,2,0,90,0,3,4,0,\n";
        let stats = Stats::parse(out).expect("parsed");
        assert_eq!(
            stats.server("be_green", "green"),
            Ok(Traffic {
                requests: 100,
                errors: 7
            })
        );
        assert!(stats.server("be_blue", "blue").is_err());
        assert!(Stats::parse("no header").is_err());
    }
}
