//! The Arrow Flight service for BI tools: `ListFlights` lists the `journeys`, `transitions` and
//! `segments` tables; `DoGet` with a table's name as the ticket streams its current snapshot,
//! consistent at one logical time (in the schema metadata under `stepstone.logical_time`), as
//! the snapshot files would hold it.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow::record_batch::RecordBatch;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest,
    HandshakeResponse, PollInfo, PutResult, SchemaAsIpc, SchemaResult, Ticket,
};
use chrono::{SecondsFormat, Utc};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::live::Live;
use crate::sink::arrow_tables::SnapshotBatches;

/// The tables the service offers.
pub const TABLES: [&str; 3] = ["journeys", "transitions", "segments"];

/// The Flight service over the live tables.
#[derive(Clone)]
pub struct TablesService {
    /// The shared state.
    pub live: Arc<Live>,
}

impl TablesService {
    /// The current snapshot of `table`.
    fn batch(&self, table: &str) -> Result<RecordBatch, Status> {
        if !TABLES.contains(&table) {
            return Err(Status::not_found(format!("no table {table:?}; the tables are {}", TABLES.join(", "))));
        }
        let tables = self.live.tables.read().expect("tables lock");
        let wall_time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        SnapshotBatches::table(&tables, &self.live.symbols, &wall_time, table)
            .expect("a listed table")
            .map_err(|e| Status::internal(format!("{e:#}")))
    }

    /// The table a descriptor names: its first path element, or its command as text.
    fn table_of(descriptor: &FlightDescriptor) -> Result<String, Status> {
        match descriptor.path.first() {
            Some(path) => Ok(path.clone()),
            None => String::from_utf8(descriptor.cmd.to_vec())
                .map_err(|_| Status::invalid_argument("the descriptor names no table")),
        }
    }

    /// The flight of `table` with its schema and row count as of now.
    fn info(&self, table: &str) -> Result<FlightInfo, Status> {
        let batch = self.batch(table)?;
        let info = FlightInfo::new()
            .try_with_schema(batch.schema().as_ref())
            .map_err(|e| Status::internal(e.to_string()))?
            .with_descriptor(FlightDescriptor::new_path(vec![table.to_owned()]))
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(table.to_owned())))
            .with_total_records(batch.num_rows() as i64)
            .with_ordered(true);
        Ok(info)
    }
}

#[tonic::async_trait]
impl FlightService for TablesService {
    type HandshakeStream = BoxStream<'static, Result<HandshakeResponse, Status>>;
    type ListFlightsStream = BoxStream<'static, Result<FlightInfo, Status>>;
    type DoGetStream = BoxStream<'static, Result<FlightData, Status>>;
    type DoPutStream = BoxStream<'static, Result<PutResult, Status>>;
    type DoActionStream = BoxStream<'static, Result<arrow_flight::Result, Status>>;
    type ListActionsStream = BoxStream<'static, Result<ActionType, Status>>;
    type DoExchangeStream = BoxStream<'static, Result<FlightData, Status>>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("no handshake: send the bearer token in the authorization header"))
    }

    async fn list_flights(&self, _request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        let infos: Vec<Result<FlightInfo, Status>> = TABLES.iter().map(|table| self.info(table)).collect();
        Ok(Response::new(stream::iter(infos).boxed()))
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        let table = Self::table_of(request.get_ref())?;
        Ok(Response::new(self.info(&table)?))
    }

    async fn poll_flight_info(&self, _request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("the tables are always ready: use GetFlightInfo"))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let table = Self::table_of(request.get_ref())?;
        let batch = self.batch(&table)?;
        let schema: &Schema = batch.schema_ref();
        let result = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(Response::new(result))
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        let table = String::from_utf8(request.get_ref().ticket.to_vec())
            .map_err(|_| Status::invalid_argument("the ticket is not a table name"))?;
        let batch = self.batch(&table)?;
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(batch.schema())
            .build(stream::iter([Ok::<_, FlightError>(batch)]))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(encoded.boxed()))
    }

    async fn do_put(&self, _request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        Err(Status::unimplemented("the tables are read-only: post events to /v1/events"))
    }

    async fn do_action(&self, _request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        Err(Status::unimplemented("no actions"))
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        Ok(Response::new(stream::empty().boxed()))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("no exchange"))
    }
}
