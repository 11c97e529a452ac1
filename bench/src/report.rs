//! The figures of a run, as one table and as JSON.

use std::time::Duration;

use serde::Serialize;

use crate::generate::Generated;
use crate::size::Size;

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub backend: String,
    pub figure: String,
    pub unit: &'static str,
    pub switchyard: f64,
    pub baseline: Option<f64>,
    /// switchyard / baseline.
    pub ratio: Option<f64>,
    pub target: String,
    /// None when the figure has no target.
    pub pass: Option<bool>,
    /// What was measured, when it is not what the name says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Figure {
    pub fn new(backend: &str, figure: &str, unit: &'static str, switchyard: f64) -> Figure {
        Figure {
            backend: backend.to_owned(),
            figure: figure.to_owned(),
            unit,
            switchyard,
            baseline: None,
            ratio: None,
            target: "—".to_owned(),
            pass: None,
            note: None,
        }
    }

    pub fn baseline(mut self, baseline: f64) -> Figure {
        self.baseline = Some(baseline);
        self.ratio = (baseline > 0.0).then(|| self.switchyard / baseline);
        self
    }

    pub fn target(mut self, target: &str, pass: bool) -> Figure {
        self.target = target.to_owned();
        self.pass = Some(pass);
        self
    }

    pub fn note(mut self, note: &str) -> Figure {
        self.note = Some(note.to_owned());
        self
    }

    /// Every number this figure produced is finite.
    pub fn is_finite(&self) -> bool {
        self.switchyard.is_finite()
            && self.baseline.is_none_or(f64::is_finite)
            && self.ratio.is_none_or(f64::is_finite)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub os: String,
}

impl Machine {
    pub fn this() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            os: std::env::consts::OS.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub backend: String,
    pub generated: Generated,
    pub ledger_verified: bool,
    pub figures: Vec<Figure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub size: Size,
    pub machine: Machine,
    pub release_build: bool,
    pub backends: Vec<BackendReport>,
    /// The benchmark process's peak resident set (server, load generator and generator together), MiB.
    pub peak_rss_mib: f64,
}

impl Report {
    pub fn figures(&self) -> impl Iterator<Item = &Figure> {
        self.backends.iter().flat_map(|b| b.figures.iter())
    }

    /// The table: figure, Switchyard, baseline, ratio, target, pass/fail.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "backend".to_owned(),
            "figure".to_owned(),
            "Switchyard".to_owned(),
            "baseline".to_owned(),
            "ratio".to_owned(),
            "target".to_owned(),
            "pass".to_owned(),
        ]];
        for f in self.figures() {
            rows.push([
                f.backend.clone(),
                f.figure.clone(),
                format!("{} {}", number(f.switchyard), f.unit),
                f.baseline
                    .map_or("—".to_owned(), |b| format!("{} {}", number(b), f.unit)),
                f.ratio.map_or("—".to_owned(), |r| format!("{r:.2}")),
                f.target.clone(),
                match f.pass {
                    Some(true) => "pass".to_owned(),
                    Some(false) => "FAIL".to_owned(),
                    None => "—".to_owned(),
                },
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
            }
        }
        out
    }
}

/// Three significant digits, without exponents.
fn number(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// p-th percentile (0–100) of `samples`, in milliseconds.
pub fn percentile_ms(samples: &[Duration], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// The process's peak resident set size, MiB (Linux `VmHWM`).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}
