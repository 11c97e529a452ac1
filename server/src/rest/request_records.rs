//! Ingesting request records in batches (JSON array or NDJSON) and looking one up.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use switchyard_domain::records::{RawRequestRecord, MAX_RECORDS_PER_BATCH};
use switchyard_domain::types::{RequestLookup, RequestRecord};

use super::actor::Actor;
use super::extract::ApiPath;
use super::metrics::Metrics;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::StoreError;
use switchyard_domain::access::Role;
use switchyard_domain::Timestamp;

/// At most this many invalid records are listed in a 422; the count says how many there were.
const MAX_LISTED: usize = 100;

#[utoipa::path(post, path = "/api/v1/request-records", tag = "request records",
    request_body(description = "A JSON array of records, or NDJSON (one record per line, `Content-Type: application/x-ndjson`). \
        A record: `{\"request_id\",\"at\",\"cluster\",\"slot\",\"full_id\",\"latency_ms\",\"outcome\"?}`. Up to 16 MiB and 10 000 records.",
        content(
            (ref("#/components/schemas/RequestRecordBatch") = "application/json"),
            (ref("#/components/schemas/RequestRecord") = "application/x-ndjson"),
        )),
    responses(
        (status = 202, description = "Stored (records whose request_id was stored before with the same content are skipped); `flagged` lists records the ledger's cluster state contradicts (stored, but the slot held another version then)", body = ref("#/components/schemas/Accepted")),
        (status = 409, description = "Some records repeat a stored request_id with other content: `error.details.conflicts` lists them; nothing was stored", body = ref("#/components/schemas/Error")),
        (status = 413, description = "Larger than 16 MiB, or more than 10 000 records: the message names the limit; nothing was stored", body = ref("#/components/schemas/Error")),
        (status = 415, description = "Neither JSON nor NDJSON", body = ref("#/components/schemas/Error")),
        (status = 422, description = "Empty, or some records invalid (malformed, unknown fields, a `/` in request_id, a time in the future or before the ledger, an unknown or retired version, an unknown cluster): `error.details.invalid` lists them (line or index, message); nothing was stored", body = ref("#/components/schemas/Error")),
    ))]
pub async fn ingest(
    State(app): State<AppState>,
    State(metrics): State<Arc<Metrics>>,
    actor: Actor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<impl IntoResponse, ApiError> {
    // A write, though not of release state: reporters (routers, model
    // servers) get a deployer token; resolving alone needs only viewer.
    actor.require_somewhere(Role::Deployer, "reporting request records")?;
    let format = Format::of(&headers)?;
    let body = body.map_err(|r| ApiError::from_bare_status(r.status()))?;
    let batch = parse_batch(&body, format)?;
    crate::access::check_records(
        app.store.as_ref(),
        &actor.identity,
        batch.records.iter().map(|r| r.cluster.clone()).collect(),
    )
    .await?;
    let check = app
        .store
        .check_request_records(&batch.records, Timestamp::now())
        .await?;
    if !check.refused.is_empty() {
        return Err(batch.refusal(&check.refused));
    }
    let accepted = match app.store.insert_request_records(&batch.records).await {
        Ok(n) => n,
        Err(StoreError::RecordConflicts(conflicts)) => return Err(batch.conflict(&conflicts)),
        Err(e) => return Err(e.into()),
    };
    metrics.records_ingested(accepted);
    let flagged = batch.listed(&check.flagged);
    let mut answer = json!({ "accepted": accepted });
    if !flagged.is_empty() {
        answer["flagged"] = Value::Array(flagged);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)))
}

/// A parsed batch: the records, and where each was in the body (index in
/// the array, or line of the NDJSON), for messages about single records.
#[derive(Debug)]
struct Parsed {
    records: Vec<RequestRecord>,
    positions: Vec<usize>,
    position: &'static str,
}

impl Parsed {
    fn listed(&self, problems: &[(usize, String)]) -> Vec<Value> {
        problems
            .iter()
            .take(MAX_LISTED)
            .map(|(i, m)| json!({ self.position: self.positions.get(*i).copied().unwrap_or(i + 1), "message": m }))
            .collect()
    }

    fn first(&self, problems: &[(usize, String)]) -> String {
        problems
            .first()
            .map(|(i, m)| {
                format!(
                    "; {} {}: {m}",
                    self.position,
                    self.positions.get(*i).copied().unwrap_or(i + 1)
                )
            })
            .unwrap_or_default()
    }

    /// 422: records that contradict what is stored (unknown or retired
    /// versions, unknown clusters, times outside the ledger); nothing stored.
    fn refusal(&self, refused: &[(usize, String)]) -> ApiError {
        ApiError::invalid(format!(
            "{} of {} request records are invalid, so none was stored{}",
            refused.len(),
            self.records.len(),
            self.first(refused)
        ))
        .with_details(json!({ "invalid_count": refused.len(), "invalid": self.listed(refused) }))
    }

    /// 409: records repeating a stored request_id with other content; nothing stored.
    fn conflict(&self, conflicts: &[(usize, String)]) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!(
                "{} of {} request records repeat a stored request_id with other content, so none was stored{}",
                conflicts.len(),
                self.records.len(),
                self.first(conflicts)
            ),
        )
        .with_details(json!({ "conflict_count": conflicts.len(), "conflicts": self.listed(conflicts) }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Ndjson,
    /// `application/json`: an array, or NDJSON when the body does not start with `[`.
    Json,
}

impl Format {
    fn of(headers: &HeaderMap) -> Result<Format, ApiError> {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => Ok(Format::Ndjson),
            "application/json" => Ok(Format::Json),
            _ => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "request records must be sent as application/json (an array) or application/x-ndjson, not {:?}",
                    if ct.is_empty() { "no content type" } else { ct }
                ),
            )),
        }
    }
}

/// Parses and validates every record; any invalid one refuses the whole batch.
fn parse_batch(body: &[u8], format: Format) -> Result<Parsed, ApiError> {
    let is_array =
        format == Format::Json && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let mut batch = Batch::default();
    if is_array {
        // Elements are kept as raw slices of the body, so one bad element
        // does not stop the others from being checked.
        let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not a JSON array: {e}"),
            )
        })?;
        batch.records.reserve(items.len());
        for (i, item) in items.iter().enumerate() {
            batch.add(i + 1, item.get().as_bytes());
        }
    } else {
        for (i, line) in body.split(|b| *b == b'\n').enumerate() {
            if !line.iter().all(u8::is_ascii_whitespace) {
                batch.add(i + 1, line);
            }
        }
    }
    batch.finish(if is_array { "index" } else { "line" })
}

#[derive(Default)]
struct Batch {
    records: Vec<RequestRecord>,
    positions: Vec<usize>,
    total: usize,
    invalid: Vec<(usize, String)>,
    invalid_count: usize,
}

impl Batch {
    fn add(&mut self, n: usize, json: &[u8]) {
        self.total += 1;
        if self.total > MAX_RECORDS_PER_BATCH {
            return; // refused whole by `finish`: only counted
        }
        let parsed = serde_json::from_slice::<RawRequestRecord>(json)
            .map_err(|e| e.to_string())
            .and_then(|raw| raw.validate().map_err(|e| e.to_string()));
        match parsed {
            // Once the batch is refused the valid records are not needed.
            Ok(record) if self.invalid_count == 0 => {
                self.records.push(record);
                self.positions.push(n);
            }
            Ok(_) => {}
            Err(message) => {
                self.invalid_count += 1;
                if self.invalid.len() < MAX_LISTED {
                    self.invalid.push((n, message));
                }
            }
        }
    }

    fn finish(self, position: &'static str) -> Result<Parsed, ApiError> {
        if self.total == 0 {
            return Err(ApiError::invalid(
                "the batch is empty: send at least one request record",
            ));
        }
        if self.total > MAX_RECORDS_PER_BATCH {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "a batch holds at most {MAX_RECORDS_PER_BATCH} request records; this one has {}, \
                     so none was stored: split it into smaller batches",
                    self.total
                ),
            )
            .with_details(json!({ "limit_records": MAX_RECORDS_PER_BATCH, "records": self.total })));
        }
        let Some((first_n, first_message)) = self.invalid.first() else {
            return Ok(Parsed {
                records: self.records,
                positions: self.positions,
                position,
            });
        };
        let message = format!(
            "{} of {} request records are invalid, so none was stored; {position} {first_n}: {first_message}",
            self.invalid_count, self.total
        );
        let listed: Vec<Value> = self
            .invalid
            .iter()
            .map(|(n, m)| json!({ position: n, "message": m }))
            .collect();
        Err(ApiError::invalid(message)
            .with_details(json!({ "invalid_count": self.invalid_count, "invalid": listed })))
    }
}

#[utoipa::path(get, path = "/api/v1/request-records/{request_id}", tag = "request records",
    params(("request_id" = String, Path)),
    responses(
        (status = 200, description = "The record, its version, the ledger events that put that version into service, and (`gates`) the analysis that let it into its cluster's traffic: the measurements of the last operation before the record that brought it in, up to the record's instant, with the templates that judged them", body = ref("#/components/schemas/RequestLookup")),
        (status = 404, description = "No record with that id", body = ref("#/components/schemas/Error")),
    ))]
pub async fn lookup(
    State(app): State<AppState>,
    ApiPath(request_id): ApiPath<String>,
) -> Result<Json<RequestLookup>, ApiError> {
    match app.store.request_lookup(&request_id).await? {
        Some(found) => Ok(Json(
            crate::analysis::lookup_with_gate_results(app.store.as_ref(), found).await?,
        )),
        None => Err(ApiError::not_found(format!(
            "no request record with request_id {request_id:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"request_id":"r1","at":"2026-03-03T14:00:00Z","cluster":"eu-1","slot":"blue","full_id":"chat:v1","latency_ms":12.5}"#;

    fn invalid_positions(e: &ApiError) -> Vec<u64> {
        let details = e.details.as_ref().expect("details");
        details["invalid"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|i| i["line"].as_u64().or(i["index"].as_u64()))
            .collect()
    }

    #[test]
    fn an_ndjson_batch_with_blank_lines_parses_every_record() {
        let body = format!("{GOOD}\n\n{}\n", GOOD.replace("r1", "r2"));
        let batch = parse_batch(body.as_bytes(), Format::Ndjson).expect("valid");
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.positions, [1, 3], "lines, blank ones counted");
    }

    #[test]
    fn a_json_array_is_detected_by_its_first_bracket() {
        let body = format!("  [{GOOD}, {}]", GOOD.replace("r1", "r2"));
        assert_eq!(
            parse_batch(body.as_bytes(), Format::Json)
                .expect("valid")
                .records
                .len(),
            2
        );
    }

    #[test]
    fn every_bad_line_is_named_with_its_line_number() {
        let body = format!("{GOOD}\nnot json\n{}\n", GOOD.replace("blue", "red"));
        let e = parse_batch(body.as_bytes(), Format::Ndjson).expect_err("invalid");
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(invalid_positions(&e), vec![2, 3]);
        assert!(e.message.contains("2 of 3"), "{}", e.message);
    }

    #[test]
    fn the_list_of_bad_records_is_capped_but_counted() {
        let body = "{}\n".repeat(250);
        let e = parse_batch(body.as_bytes(), Format::Ndjson).expect_err("invalid");
        assert_eq!(invalid_positions(&e).len(), MAX_LISTED);
        assert_eq!(e.details.as_ref().expect("details")["invalid_count"], 250);
    }

    #[test]
    fn an_empty_batch_is_refused() {
        assert_eq!(
            parse_batch(b"[]", Format::Json).expect_err("empty").status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            parse_batch(b" \n ", Format::Ndjson)
                .expect_err("empty")
                .status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
