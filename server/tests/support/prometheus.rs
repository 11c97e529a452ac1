//! A real Prometheus for tests (Debian's `prometheus`): started on a free
//! loopback port with its own config and data directory, scraping the given
//! targets every second, and stopped when dropped or, through a watchdog,
//! when the test process ends however it ends. Shared by tests/api/analysis.rs
//! and tests/peers.rs.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SWITCHYARD_PROMETHEUS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// A Prometheus process with its own config and data directory.
pub struct Prometheus {
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` every second; waits until it is
    /// ready and, if `wait_scrape`, until a first scrape is in.
    pub fn start(bin: &PathBuf, targets: &[&str], wait_scrape: bool) -> Prometheus {
        let dir = std::env::temp_dir().join(format!("sy-prom-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nscrape_configs:\n  - job_name: targets\n    static_configs: [ {{ targets: [{}] }} ]\n",
                targets.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(", ")
            ),
        )
        .expect("config written");
        // A watchdog stops Prometheus when this test process ends, however it ends.
        let script = format!(
            "\"$0\" \"$@\" & p=$!; trap 'kill $p' TERM; while kill -0 {} 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 0.5; done; kill $p 2>/dev/null; wait $p",
            std::process::id()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--storage.tsdb.retention.time=1d")
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.join("log"))
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            )
            .spawn()
            .expect("prometheus starts");
        let url = format!("http://127.0.0.1:{port}");
        let p = Prometheus { url, child, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = blocking_get(&format!("{}/api/v1/query?query=up", p.url));
            let ready = up.is_some();
            let scraped = up.is_some_and(|v| {
                v["data"]["result"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|s| s["value"][1] == "1"))
            });
            if ready && (!wait_scrape || scraped) {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus did not {} within 30 s; its log: {}",
                if ready {
                    "scrape the exporter"
                } else {
                    "start"
                },
                std::fs::read_to_string(p.dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // TERM to the watchdog, which stops Prometheus and waits for it.
            let _ = Command::new("kill")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A GET answered with JSON, from plain blocking code (no runtime needed).
pub fn blocking_get(url: &str) -> Option<Value> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_at(rest.find('/')?);
    let mut s = std::net::TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    // Prometheus answers small bodies with Content-Length, but may chunk.
    let json = body.get(body.find('{')?..body.rfind('}')? + 1)?;
    serde_json::from_str(json).ok()
}
