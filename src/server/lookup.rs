//! The lookup endpoints: the current context of one customer, the segments and the transitions
//! out of a contact point, answered from the engine's in-memory tables and their indexes as of
//! the latest complete logical time.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use stepstone_dataflows::event::micros_to_value;
use stepstone_dataflows::symbols::Sym;
use utoipa::{IntoParams, ToSchema};

use super::api_error::{ApiError, ErrorBody};
use super::live::Live;
use crate::sink::deltas::journey_object;

/// The answer of `GET /v1/customers/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerAnswer {
    /// The logical time the answer is as of (none before the first complete one).
    time: Option<u64>,
    /// The id asked for.
    customer: String,
    /// The profile's journey rows, as the `journeys` snapshot table and journey deltas have
    /// them, each with the names of the segments it is in (`segments`).
    #[schema(value_type = Vec<Object>)]
    journeys: Vec<Value>,
    /// The profile the id belongs to, when it is not the id's own (a linked id or a device).
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<String>,
    /// Whether that profile is an anonymous device's.
    #[serde(skip_serializing_if = "Option::is_none")]
    anonymous: Option<bool>,
}

/// One segment's aggregates, as the `segments` snapshot table has them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentRow {
    /// The segment's name.
    segment: String,
    /// Journeys in the segment.
    members: i64,
    /// The summed value of its members' events.
    value: f64,
    /// Members that converted.
    converted_members: i64,
    /// `converted_members / members` (0 without members).
    conversion_rate: f64,
}

/// The answer of `GET /v1/segments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentsAnswer {
    /// The logical time the answer is as of.
    time: Option<u64>,
    /// Every segment, by name.
    segments: Vec<SegmentRow>,
}

/// The members of a segment on one channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelMembers {
    /// The channel.
    channel: String,
    /// Members whose journeys used it.
    members: i64,
}

/// The answer of `GET /v1/segments/{name}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentAnswer {
    /// The segment's aggregates.
    #[serde(flatten)]
    row: SegmentRow,
    /// Its members per channel, by channel.
    channels: Vec<ChannelMembers>,
    /// The logical time the answer is as of.
    time: Option<u64>,
}

/// The query of `GET /v1/transitions`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TransitionsQuery {
    /// Only the edges out of this contact point (or synthetic state such as `(start)`).
    from: Option<String>,
}

/// One edge of the transition graph.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionRow {
    /// The contact point (or `(start)`) the edge leaves.
    from: String,
    /// The contact point (or `(conversion)`, `(exit)`) it enters.
    to: String,
    /// Times the edge was taken.
    count: i64,
    /// Summed time between the two events, in ms.
    dwell_ms_total: i64,
    /// Mean time between the two events, in ms.
    dwell_ms_mean: f64,
    /// `count` over all edges out of `from`.
    probability: f64,
}

/// The answer of `GET /v1/transitions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitionsAnswer {
    /// The logical time the answer is as of.
    time: Option<u64>,
    /// The `from` asked for, if any.
    from: Option<String>,
    /// The edges, by `from` and then `to`.
    transitions: Vec<TransitionRow>,
}

/// `GET /v1/customers/{id}`: the journey rows of the profile of the customer id (or device id)
/// `id`, and the segments each is in.
#[utoipa::path(
    get,
    path = "/v1/customers/{id}",
    tag = "lookups",
    params(("id" = String, Path, description = "A customer id, or a device id")),
    responses(
        (status = 200, description = "The profile's journeys as of the latest complete time", body = CustomerAnswer),
        (status = 404, description = "No profile has the id", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn customer(State(live): State<Arc<Live>>, Path(id): Path<String>) -> Response {
    let not_found = |id: String| ApiError::NoCustomer(id).into_response();
    let Some(customer) = live.symbols.get(&id) else { return not_found(id) };
    let tables = live.tables.read().expect("tables lock");
    let Some((profile, rows)) = tables.profile_rows(customer) else { return not_found(id) };
    let names = live.symbols.names();
    let mut journeys = Vec::with_capacity(rows.len());
    for row in rows {
        let mut object = match journey_object(row, &names) {
            Ok(object) => object,
            Err(error) => return ApiError::from(error).into_response(),
        };
        let mut segments: Vec<&str> = tables.segments_of(row.journey).into_iter().map(|s| names.get(s)).collect();
        segments.sort_unstable();
        object["segments"] = json!(segments);
        journeys.push(object);
    }
    let linked = profile.id != customer || profile.device;
    let answer = CustomerAnswer {
        time: tables.time(),
        customer: id,
        journeys,
        profile: linked.then(|| names.get(profile.id).to_owned()),
        anonymous: linked.then_some(profile.device),
    };
    Json(answer).into_response()
}

/// `GET /v1/segments`: every segment's aggregates, by name.
#[utoipa::path(
    get,
    path = "/v1/segments",
    tag = "lookups",
    responses(
        (status = 200, description = "Every segment's aggregates", body = SegmentsAnswer),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn segments(State(live): State<Arc<Live>>) -> Response {
    let tables = live.tables.read().expect("tables lock");
    let names = live.symbols.names();
    let mut segments: Vec<SegmentRow> =
        tables.segments().into_iter().map(|(name, stats)| segment_row(names.get(name), stats)).collect();
    segments.sort_by(|a, b| a.segment.cmp(&b.segment));
    Json(SegmentsAnswer { time: tables.time(), segments }).into_response()
}

/// `GET /v1/segments/{name}`: one segment's aggregates and its members per channel.
#[utoipa::path(
    get,
    path = "/v1/segments/{name}",
    tag = "lookups",
    params(("name" = String, Path, description = "The segment's name")),
    responses(
        (status = 200, description = "The segment's aggregates and members per channel", body = SegmentAnswer),
        (status = 404, description = "No segment of the name", body = ErrorBody),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn segment(State(live): State<Arc<Live>>, Path(name): Path<String>) -> Response {
    let Some(segment) = live.symbols.get(&name) else { return ApiError::NoSegment(name).into_response() };
    let tables = live.tables.read().expect("tables lock");
    if !tables.has_segment(segment) {
        return ApiError::NoSegment(name).into_response();
    }
    let names = live.symbols.names();
    let stats = tables.segments().into_iter().find(|(s, _)| *s == segment).map_or((0, 0, 0), |(_, stats)| stats);
    let mut channels: Vec<(&str, i64)> = tables
        .segment_channels()
        .iter()
        .filter(|((s, _), _)| *s == segment)
        .map(|((_, channel), members)| (names.get(*channel), *members))
        .collect();
    channels.sort_unstable();
    let answer = SegmentAnswer {
        row: segment_row(&name, stats),
        channels: channels
            .into_iter()
            .map(|(channel, members)| ChannelMembers { channel: channel.to_owned(), members })
            .collect(),
        time: tables.time(),
    };
    Json(answer).into_response()
}

/// `GET /v1/transitions?from=CP`: the edges out of `CP` (all edges without `from`), with
/// counts, dwell times and transition probabilities.
#[utoipa::path(
    get,
    path = "/v1/transitions",
    tag = "lookups",
    params(TransitionsQuery),
    responses(
        (status = 200, description = "The edges, with counts, dwell and probabilities", body = TransitionsAnswer),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
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
    let mut transitions: Vec<TransitionRow> = edges
        .iter()
        .map(|&((from, to), (count, dwell))| {
            let total = out_totals[&from];
            TransitionRow {
                from: names.get(from).to_owned(),
                to: names.get(to).to_owned(),
                count,
                dwell_ms_total: dwell,
                dwell_ms_mean: if count == 0 { 0.0 } else { dwell as f64 / count as f64 },
                probability: if total == 0 { 0.0 } else { count as f64 / total as f64 },
            }
        })
        .collect();
    transitions.sort_by(|a, b| (&a.from, &a.to).cmp(&(&b.from, &b.to)));
    Json(TransitionsAnswer { time: tables.time(), from: query.from, transitions }).into_response()
}

/// A segment's aggregates as the `segments` snapshot table has them.
fn segment_row(name: &str, (members, value, converted): (i64, i64, i64)) -> SegmentRow {
    SegmentRow {
        segment: name.to_owned(),
        members,
        value: micros_to_value(value),
        converted_members: converted,
        conversion_rate: if members == 0 { 0.0 } else { converted as f64 / members as f64 },
    }
}
