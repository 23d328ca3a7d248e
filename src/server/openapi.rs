//! The OpenAPI description of the HTTP API, generated from the handlers' annotations and the
//! types of their answers, and served at `GET /v1/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::api_error::ErrorBody;
use super::{erase, ingest, lookup, subscribe};

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stepstone",
        description = "Ingest interaction events, subscribe to context deltas and look up journeys, segments and \
            transitions of a running `stepstone serve`. Every error answer is a JSON object with an `error` text. \
            With a token configured, every `/v1` endpoint requires `Authorization: Bearer <token>`."
    ),
    paths(
        ingest::ingest,
        erase::erase,
        lookup::customer,
        lookup::segments,
        lookup::segment,
        lookup::transitions,
        subscribe::websocket,
        subscribe::sse,
        openapi,
        super::metrics,
        super::healthz,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    security((), ("bearer" = []))
)]
pub struct ApiDoc;

/// Adds the bearer token's security scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// `GET /v1/openapi.json`: this description.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of the API", body = Object),
        (status = "default", description = "An error", body = ErrorBody),
    )
)]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_and_every_error_is_an_error_body() {
        let description = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = description["paths"].as_object().unwrap();
        let mut routes: Vec<&str> = paths.keys().map(String::as_str).collect();
        routes.sort_unstable();
        assert_eq!(
            routes,
            [
                "/healthz",
                "/metrics",
                "/v1/customers/{id}",
                "/v1/events",
                "/v1/openapi.json",
                "/v1/segments",
                "/v1/segments/{name}",
                "/v1/subscribe",
                "/v1/subscribe/sse",
                "/v1/transitions",
            ]
        );
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') || status == "default" {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(schema, "#/components/schemas/ErrorBody", "{method} {path} {status}");
                    }
                }
            }
        }
    }
}
