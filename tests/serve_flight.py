#!/usr/bin/env python3
"""Reads the live service's tables over Arrow Flight with pyarrow's own client.

Usage: serve_flight.py grpc://127.0.0.1:PORT TOKEN

Prints one JSON object: the flights ListFlights lists (descriptor path, tickets, record count),
each table DoGet returns for its ticket (row count, `stepstone.logical_time` metadata, column
names, and the columns as lists; timestamps as ms since the epoch), and what happens to calls
without the token and with a wrong one. tests/serve.rs compares it with the oracle and the
service's own snapshot files.
"""

import json
import sys

import pyarrow as pa
import pyarrow.flight as fl

TIMEOUT = 30.0
TABLES = ["journeys", "transitions", "segments"]


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def as_json_columns(table):
    """The table's columns as lists, timestamps cast to int64 ms."""
    columns = {}
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_timestamp(field.type):
            assert field.type.unit == "ms", field
            column = column.cast(pa.int64())
        columns[field.name] = column.to_pylist()
    return columns


def refused(client, options):
    """How ListFlights and DoGet fare with `options`."""
    outcome = {}
    calls = {
        "list_flights": lambda: list(client.list_flights(options=options)),
        "do_get": lambda: client.do_get(fl.Ticket(b"journeys"), options=options).read_all(),
    }
    for name, call in calls.items():
        try:
            call()
            outcome[name] = "accepted"
        except fl.FlightUnauthenticatedError:
            outcome[name] = "unauthenticated"
        except fl.FlightError as error:
            outcome[name] = f"{type(error).__name__}: {error}"
    return outcome


def main():
    location, token = sys.argv[1], sys.argv[2]
    client = fl.FlightClient(location)
    authorized = fl.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {token}".encode())], timeout=TIMEOUT
    )
    out = {"flights": [], "tables": {}}
    for info in client.list_flights(options=authorized):
        out["flights"].append(
            {
                "path": [text(p) for p in info.descriptor.path],
                "tickets": [text(e.ticket.ticket) for e in info.endpoints],
                "records": info.total_records,
            }
        )
    for name in TABLES:
        reader = client.do_get(fl.Ticket(name.encode()), options=authorized)
        table = reader.read_all()
        metadata = table.schema.metadata or reader.schema.metadata or {}
        out["tables"][name] = {
            "rows": table.num_rows,
            "logical_time": text(metadata.get(b"stepstone.logical_time", b"")),
            "columns": table.column_names,
            "data": as_json_columns(table),
        }
    info = client.get_flight_info(fl.FlightDescriptor.for_path("journeys"), options=authorized)
    out["flight_info"] = {"records": info.total_records, "columns": info.schema.names}
    schema = client.get_schema(fl.FlightDescriptor.for_path("segments"), options=authorized).schema
    out["segments_schema"] = schema.names
    try:
        client.do_get(fl.Ticket(b"nope"), options=authorized).read_all()
        out["unknown_ticket"] = "accepted"
    except (fl.FlightError, pa.ArrowException) as error:
        out["unknown_ticket"] = type(error).__name__
    out["without_token"] = refused(client, fl.FlightCallOptions(timeout=TIMEOUT))
    out["wrong_token"] = refused(
        client,
        fl.FlightCallOptions(headers=[(b"authorization", b"Bearer wrong")], timeout=TIMEOUT),
    )
    client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
