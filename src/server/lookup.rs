//! The lookup endpoints: the current context of one customer, the segments and the transitions
//! out of a contact point, answered from the engine's in-memory tables and their indexes as of
//! the latest complete logical time.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use stepstone_dataflows::event::micros_to_value;
use stepstone_dataflows::symbols::Sym;

use super::ingest::error;
use super::live::Live;
use crate::sink::deltas::journey_object;

/// `GET /v1/customers/{id}`: the journey rows of the profile of the customer id (or device id)
/// `id`, and the segments each is in.
pub async fn customer(State(live): State<Arc<Live>>, Path(id): Path<String>) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, format!("no customer {id:?}"));
    let Some(customer) = live.symbols.get(&id) else { return not_found() };
    let tables = live.tables.read().expect("tables lock");
    let Some((profile, rows)) = tables.profile_rows(customer) else { return not_found() };
    let names = live.symbols.names();
    let mut journeys = Vec::with_capacity(rows.len());
    for row in rows {
        let mut object = match journey_object(row, &names) {
            Ok(object) => object,
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        };
        let mut segments: Vec<&str> = tables.segments_of(row.journey).into_iter().map(|s| names.get(s)).collect();
        segments.sort_unstable();
        object["segments"] = json!(segments);
        journeys.push(object);
    }
    let mut answer = json!({ "time": tables.time(), "customer": id, "journeys": journeys });
    if profile.id != customer || profile.device {
        answer["profile"] = json!(names.get(profile.id));
        answer["anonymous"] = json!(profile.device);
    }
    Json(answer).into_response()
}

/// `GET /v1/segments`: every segment's aggregates, by name.
pub async fn segments(State(live): State<Arc<Live>>) -> Response {
    let tables = live.tables.read().expect("tables lock");
    let names = live.symbols.names();
    let mut rows: Vec<(&str, Value)> = tables
        .segments()
        .into_iter()
        .map(|(name, stats)| (names.get(name), segment_object(names.get(name), stats)))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(b.0));
    Json(json!({ "time": tables.time(), "segments": rows.into_iter().map(|(_, v)| v).collect::<Vec<_>>() }))
        .into_response()
}

/// `GET /v1/segments/{name}`: one segment's aggregates and its members per channel.
pub async fn segment(State(live): State<Arc<Live>>, Path(name): Path<String>) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, format!("no segment {name:?}"));
    let Some(segment) = live.symbols.get(&name) else { return not_found() };
    let tables = live.tables.read().expect("tables lock");
    if !tables.has_segment(segment) {
        return not_found();
    }
    let names = live.symbols.names();
    let stats = tables.segments().into_iter().find(|(s, _)| *s == segment).map_or((0, 0, 0), |(_, stats)| stats);
    let mut object = segment_object(&name, stats);
    let mut channels: Vec<(&str, i64)> = tables
        .segment_channels()
        .iter()
        .filter(|((s, _), _)| *s == segment)
        .map(|((_, channel), members)| (names.get(*channel), *members))
        .collect();
    channels.sort_unstable();
    object["channels"] =
        channels.into_iter().map(|(channel, members)| json!({ "channel": channel, "members": members })).collect();
    object["time"] = json!(tables.time());
    Json(object).into_response()
}

/// The query of `GET /v1/transitions`.
#[derive(Debug, Deserialize)]
pub struct TransitionsQuery {
    /// Only the edges out of this contact point (or synthetic state such as `(start)`).
    from: Option<String>,
}

/// `GET /v1/transitions?from=CP`: the edges out of `CP` (all edges without `from`), with
/// counts, dwell times and transition probabilities.
pub async fn transitions(State(live): State<Arc<Live>>, Query(query): Query<TransitionsQuery>) -> Response {
    let tables = live.tables.read().expect("tables lock");
    let names = live.symbols.names();
    let edges: Vec<((Sym, Sym), (i64, i64))> = match &query.from {
        Some(from) => match live.symbols.get(from) {
            Some(from) => tables.transitions_from(from).into_iter().map(|(to, stats)| ((from, to), stats)).collect(),
            None => Vec::new(),
        },
        None => tables.transitions().iter().map(|(edge, stats)| (*edge, *stats)).collect(),
    };
    let mut out_totals: HashMap<Sym, i64> = HashMap::new();
    for ((from, _), (count, _)) in &edges {
        *out_totals.entry(*from).or_default() += count;
    }
    let mut rows: Vec<(&str, &str, Value)> = edges
        .iter()
        .map(|&((from, to), (count, dwell))| {
            let total = out_totals[&from];
            let value = json!({
                "from": names.get(from),
                "to": names.get(to),
                "count": count,
                "dwell_ms_total": dwell,
                "dwell_ms_mean": if count == 0 { 0.0 } else { dwell as f64 / count as f64 },
                "probability": if total == 0 { 0.0 } else { count as f64 / total as f64 },
            });
            (names.get(from), names.get(to), value)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    Json(json!({
        "time": tables.time(),
        "from": query.from,
        "transitions": rows.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// A segment's aggregates as the `segments` snapshot table has them.
fn segment_object(name: &str, (members, value, converted): (i64, i64, i64)) -> Value {
    json!({
        "segment": name,
        "members": members,
        "value": micros_to_value(value),
        "converted_members": converted,
        "conversion_rate": if members == 0 { 0.0 } else { converted as f64 / members as f64 },
    })
}
