//! How big a run is: the data set and how long each measurement runs.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Size {
    pub name: &'static str,
    pub models: u32,
    pub versions_per_model: u32,
    /// The first model has this many versions instead (the model page with 1 000 versions).
    pub big_model_versions: u32,
    pub clusters: u32,
    /// Ledger events over two years; sign-ins fill up what the release history leaves.
    pub ledger_events: u64,
    pub request_records: u64,
    /// Records sent through the API, and as many through the raw engine.
    pub ingest_records: u64,
    pub ingest_clients: usize,
    /// Sequential requests per latency figure.
    pub latency_samples: usize,
    /// How long each throughput run lasts.
    pub load_millis: u64,
    pub load_connections: usize,
    pub pin_changes: usize,
    pub page_samples: usize,
}

impl Size {
    pub fn parse(name: &str) -> anyhow::Result<Size> {
        match name {
            "smoke" => Ok(Size::smoke()),
            "medium" => Ok(Size::medium()),
            "full" => Ok(Size::full()),
            other => anyhow::bail!("unknown size {other:?}: expected smoke, medium or full"),
        }
    }

    /// Small enough for the test suite: seconds in a debug build.
    pub fn smoke() -> Size {
        Size {
            name: "smoke",
            models: 20,
            versions_per_model: 10,
            big_model_versions: 100,
            clusters: 10,
            ledger_events: 10_000,
            request_records: 50_000,
            ingest_records: 10_000,
            ingest_clients: 4,
            latency_samples: 40,
            load_millis: 1_000,
            load_connections: 8,
            pin_changes: 3,
            page_samples: 5,
        }
    }

    /// The full catalogue with a tenth of the history: a first look on a slow machine.
    pub fn medium() -> Size {
        Size {
            name: "medium",
            ledger_events: 300_000,
            request_records: 1_000_000,
            ingest_records: 200_000,
            latency_samples: 500,
            load_millis: 5_000,
            pin_changes: 10,
            page_samples: 30,
            ..Size::full()
        }
    }

    /// The data set: 200 models × 50 versions, 100 clusters, 1 M
    /// ledger events over two years, 10 M request records.
    pub fn full() -> Size {
        Size {
            name: "full",
            models: 200,
            versions_per_model: 50,
            big_model_versions: 1_000,
            clusters: 100,
            ledger_events: 1_000_000,
            request_records: 10_000_000,
            ingest_records: 500_000,
            ingest_clients: 4,
            latency_samples: 1_000,
            load_millis: 10_000,
            load_connections: 32,
            pin_changes: 20,
            page_samples: 50,
        }
    }
}
