//! A local Upstash REST bridge in front of a real Redis, for `wrangler dev` and tests.
//!
//! Speaks the protocol Upstash documents, closely enough that `@upstash/redis` works unchanged:
//! - `POST /` with a JSON command array (`["SET","k","v"]`) → `{"result": …}`;
//! - `POST /pipeline` with an array of commands → `[{"result": …} | {"error": …}, …]`;
//! - `POST /multi-exec`: the same, run as one MULTI/EXEC transaction;
//! - `GET|POST /cmd/arg/arg…`: the command in the path (a POST body is the last argument);
//! - `Authorization: Bearer <token>` (or `?_token=`), else 401 `{"error":"Unauthorized"}`;
//! - a failing command answers 400 `{"error":"ERR …"}`;
//! - Redis unreachable answers 503 `{"error": …}` at once while the circuit breaker of
//!   [`crate::redis_conn`] is open, so the edge falls back to the origin without waiting; the
//!   bridge uses Redis again within `REDIS_RETRY_AFTER_MS` of its return;
//! - `Upstash-Encoding: base64` base64-encodes every string in results except `OK`.

use crate::config::{RedisTimeouts, Secret};
use crate::redis_conn::{self, RedisConn};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use percent_encoding::percent_decode_str;
use redis::{RedisError, Value};
use serde_json::{json, Value as Json_};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct BridgeState {
    redis: RedisConn,
    token: Arc<Secret>,
}

impl BridgeState {
    /// A bridge to `redis_url`; connects on first use, so it starts while Redis is down.
    pub fn new(
        redis_url: &str,
        timeouts: RedisTimeouts,
        token: Secret,
    ) -> redis::RedisResult<Self> {
        Ok(Self {
            redis: RedisConn::new(redis_url, timeouts)?,
            token: Arc::new(token),
        })
    }
}

pub fn router(state: BridgeState) -> Router {
    Router::new()
        .route("/", post(single))
        .route("/pipeline", post(pipeline))
        .route("/multi-exec", post(multi_exec))
        .route("/{*command}", get(path_command).post(path_command))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            16 * 1024 * 1024,
        ))
        .with_state(state)
}

/// A protocol-level failure: status plus Upstash's `{"error": …}` body.
/// A refused request: its status and the Upstash-style `error` text.
#[derive(Debug)]
pub struct BridgeError(StatusCode, String);

impl IntoResponse for BridgeError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type BridgeResult<T> = Result<T, BridgeError>;

fn bad_request(message: impl Into<String>) -> BridgeError {
    BridgeError(StatusCode::BAD_REQUEST, message.into())
}

/// 503 when Redis could not be reached (the caller should go elsewhere), else 400.
fn redis_failure(e: &RedisError) -> BridgeError {
    if redis_conn::is_connection_failure(e) {
        BridgeError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    } else {
        bad_request(e.to_string())
    }
}

/// Checks the token and reads the response encoding.
fn authorize(
    state: &BridgeState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> BridgeResult<bool> {
    let presented = super::auth::bearer_token(headers)
        .or(query.get("_token").map(String::as_str))
        .unwrap_or_default();
    if !constant_time_eq::constant_time_eq(presented.as_bytes(), state.token.expose().as_bytes()) {
        return Err(BridgeError(StatusCode::UNAUTHORIZED, "Unauthorized".into()));
    }
    Ok(headers
        .get("upstash-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("base64")))
}

fn parse_json(body: &[u8]) -> BridgeResult<Json_> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("ERR invalid JSON body: {e}")))
}

/// A JSON command array as a Redis command. Arguments may be strings, numbers or booleans.
fn to_command(value: &Json_) -> BridgeResult<redis::Cmd> {
    let parts = value
        .as_array()
        .filter(|parts| !parts.is_empty())
        .ok_or_else(|| bad_request("ERR a command must be a non-empty JSON array"))?;
    let mut args = parts.iter().map(|part| match part {
        Json_::String(s) => Ok(s.clone()),
        Json_::Number(n) => Ok(n.to_string()),
        Json_::Bool(b) => Ok(b.to_string()),
        other => Err(bad_request(format!(
            "ERR command arguments must be strings or numbers, not {other}"
        ))),
    });
    let mut cmd = redis::cmd(&args.next().expect("non-empty")?);
    for arg in args {
        cmd.arg(arg?);
    }
    Ok(cmd)
}

/// A Redis reply as Upstash renders it.
fn to_json(value: Value, base64: bool) -> Json_ {
    let text = |s: String| {
        if base64 && s != "OK" {
            Json_::String(base64::engine::general_purpose::STANDARD.encode(s))
        } else {
            Json_::String(s)
        }
    };
    match value {
        Value::Nil => Json_::Null,
        Value::Int(i) => json!(i),
        Value::Okay => Json_::String("OK".into()),
        Value::SimpleString(s) => text(s),
        Value::BulkString(bytes) => {
            if base64 {
                Json_::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Json_::String(String::from_utf8_lossy(&bytes).into_owned())
            }
        }
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            Json_::Array(items.into_iter().map(|v| to_json(v, base64)).collect())
        }
        Value::Map(pairs) => Json_::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_json(k, base64), to_json(v, base64)])
                .collect(),
        ),
        Value::Attribute { data, .. } => to_json(*data, base64),
        Value::Double(d) => text(d.to_string()),
        Value::Boolean(b) => json!(i64::from(b)),
        Value::VerbatimString { text: t, .. } => text(t),
        Value::BigNumber(n) => text(n.to_string()),
        Value::ServerError(e) => {
            json!({ "error": format!("{} {}", e.code(), e.details().unwrap_or_default()) })
        }
    }
}

fn outcome(result: redis::RedisResult<Value>, base64: bool) -> Json_ {
    match result {
        Ok(value) => json!({ "result": to_json(value, base64) }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

async fn run(state: &BridgeState, cmd: redis::Cmd, base64: bool) -> BridgeResult<Response> {
    let mut conn = state.redis.get().await.map_err(|e| redis_failure(&e))?;
    match cmd.query_async::<Value>(&mut conn).await {
        Ok(value) => Ok(Json(json!({ "result": to_json(value, base64) })).into_response()),
        Err(e) => Err(redis_failure(&e)),
    }
}

async fn single(
    State(state): State<BridgeState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> BridgeResult<Response> {
    let base64 = authorize(&state, &headers, &query)?;
    let cmd = to_command(&parse_json(&body)?)?;
    run(&state, cmd, base64).await
}

/// The commands of a `/pipeline` or `/multi-exec` body.
pub fn commands(body: &[u8]) -> BridgeResult<Vec<redis::Cmd>> {
    parse_json(body)?
        .as_array()
        .ok_or_else(|| bad_request("ERR a pipeline must be a JSON array of commands"))?
        .iter()
        .map(to_command)
        .collect()
}

/// Commands run in order on one connection; each has its own result or error.
async fn pipeline(
    State(state): State<BridgeState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> BridgeResult<Json<Vec<Json_>>> {
    let base64 = authorize(&state, &headers, &query)?;
    let cmds = commands(&body)?;
    let mut conn = state.redis.get().await.map_err(|e| redis_failure(&e))?;
    let mut results = Vec::new();
    for cmd in cmds {
        results.push(outcome(cmd.query_async::<Value>(&mut conn).await, base64));
    }
    Ok(Json(results))
}

/// One MULTI/EXEC transaction. If Redis rejects it, the whole request answers 400.
async fn multi_exec(
    State(state): State<BridgeState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> BridgeResult<Json<Vec<Json_>>> {
    let base64 = authorize(&state, &headers, &query)?;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for cmd in commands(&body)? {
        pipe.add_command(cmd);
    }
    let mut conn = state.redis.get().await.map_err(|e| redis_failure(&e))?;
    let values: Vec<Value> = pipe
        .query_async(&mut conn)
        .await
        .map_err(|e| redis_failure(&e))?;
    Ok(Json(
        values
            .into_iter()
            .map(|v| match to_json(v, base64) {
                error @ Json_::Object(_) => error,
                result => json!({ "result": result }),
            })
            .collect(),
    ))
}

async fn path_command(
    State(state): State<BridgeState>,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> BridgeResult<Response> {
    let base64 = authorize(&state, &headers, &query)?;
    let cmd = path_to_command(uri.path(), &body)?;
    run(&state, cmd, base64).await
}

/// The command of a `/cmd/arg/arg…` request; a non-empty body is the last argument.
pub fn path_to_command(path: &str, body: &[u8]) -> BridgeResult<redis::Cmd> {
    // Split the raw path before decoding, so an encoded `%2F` stays inside its argument.
    let mut parts: Vec<Json_> = path
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| Json_::String(percent_decode_str(part).decode_utf8_lossy().into_owned()))
        .collect();
    if !body.is_empty() {
        parts.push(Json_::String(String::from_utf8_lossy(body).into_owned()));
    }
    to_command(&Json_::Array(parts))
}
