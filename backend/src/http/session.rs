//! `/v1/auth/*`: passwordless sign-in by emailed link ([`crate::sign_in`]) and the browser
//! sessions it starts ([`crate::sessions`]), for the dashboard.
//!
//! [`public_router`] needs no credential (asking for a link, redeeming it); [`router`] needs the
//! session cookie. Both sit behind the `/v1` Origin check ([`super::origin`]), whose 403
//! `forbidden_origin` the document adds to every state-changing operation.

use super::auth::{self, Credential, Principal};
use super::extract::{AppJson, ClientIp};
use super::tags;
use crate::error::{AppError, AuthErrors, ErrorBody, JsonBodyErrors, Result};
use crate::sessions::Session;
use crate::state::AppState;
use crate::users::repo::{self as users, User};
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `POST /v1/auth/sign-in` and `POST /v1/auth/session`: no credential needed.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_link))
        .routes(routes!(redeem))
}

/// `GET` and `DELETE /v1/auth/session`, `DELETE /v1/auth/sessions`: the session cookie.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(current, sign_out))
        .routes(routes!(sign_out_everywhere))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Where to mail the link.
    #[schema(min_length = 3, max_length = 320, example = "ann@example.com")]
    email: String,
}

/// Always `sent`, whether or not a mail went out.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInSent {
    #[schema(example = "sent")]
    status: &'static str,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    /// The `token` query parameter of the emailed link.
    #[schema(example = "q3Vx0y4c9e6xk1Hh2b8pJzV1m0Wc7tqC5yY9aVd3LkQ")]
    token: String,
}

/// The signed-in session: who, until when, and where short links live.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// The signed-in user, as `GET /v1/me` answers.
    user: User,
    /// When the session ends however it is used (it also ends after `SESSION_IDLE_SECS` unused).
    expires_at: DateTime<Utc>,
    /// The public base of short links (`SHORT_URL_BASE`): a link's short URL is
    /// `<short_base_url>/<slug>`.
    #[schema(example = "https://sho.rt")]
    short_base_url: String,
}

impl SessionInfo {
    async fn of(state: &AppState, session: &Session) -> Result<Self> {
        let user = users::find(&state.db, session.user_id)
            .await?
            .ok_or(AppError::Unauthorized)?;
        Ok(Self {
            user,
            expires_at: session.absolute_expires_at,
            short_base_url: state.config.short_url_base.clone(),
        })
    }
}

/// Mails a sign-in link, valid once for 15 minutes, if this email may sign in (`REGISTRATION`).
/// The answer is the same whether or not an account exists or a mail goes out. Limited per email
/// and per client address (the connection's peer, or what a trusted proxy says it is; IPv6 per
/// /64) over a sliding 15 minutes.
#[utoipa::path(
    post, path = "/v1/auth/sign-in", tag = tags::AUTH,
    request_body = SignInRequest,
    responses(
        (status = 202, description = "Accepted: a link is mailed if this email may sign in", body = SignInSent),
        JsonBodyErrors,
        (status = 422, description = "`validation_failed`: not an email address, or the body breaks its schema", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many requests for this email or from this address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until a request is allowed again"))),
        (status = 503, description = "`sign_in_unavailable`: Redis (sign-in limits and sessions) is down; short links keep working. Or `database_unavailable`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all, fields(client = %client))]
pub async fn request_link(
    State(state): State<AppState>,
    // A forwarded-for header only from a trusted proxy: any client can send one.
    ClientIp(client): ClientIp,
    AppJson(input): AppJson<SignInRequest>,
) -> Result<(StatusCode, Json<SignInSent>)> {
    state.sign_in.request(&input.email, client).await?;
    Ok((StatusCode::ACCEPTED, Json(SignInSent { status: "sent" })))
}

/// Redeems an emailed sign-in link: starts a session and sets its cookie
/// (`smo1_session`, `HttpOnly; Secure; SameSite=Lax`, `Max-Age` the absolute lifetime).
#[utoipa::path(
    post, path = "/v1/auth/session", tag = tags::AUTH,
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "Signed in",
            headers(("Set-Cookie" = String, description = "`smo1_session=<id>; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=<seconds>`")),
            body = SessionInfo),
        JsonBodyErrors,
        (status = 400, description = "`sign_in_link_invalid`: the link is unknown, expired or already used; or `malformed_request`: the body is not JSON", body = ErrorBody),
        (status = 503, description = "`sign_in_unavailable`: Redis (sessions) is down; short links keep working. Or `database_unavailable`", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn redeem(
    State(state): State<AppState>,
    AppJson(input): AppJson<RedeemRequest>,
) -> Result<impl IntoResponse> {
    let user_id = state.sign_in.redeem(&input.token).await?;
    let new = state.sessions.create(user_id).await?;
    let info = SessionInfo::of(&state, &new.session).await?;
    let max_age = (new.session.absolute_expires_at - Utc::now()).num_seconds();
    Ok((
        AppendHeaders([(SET_COOKIE, auth::set_session_cookie(&new.id, max_age))]),
        Json(info),
    ))
}

/// The session of this cookie, or 401.
fn session_of(principal: &Principal) -> Result<&Session> {
    match &principal.credential {
        Credential::Session(session) => Ok(session),
        Credential::ApiKey(_) => Err(AppError::Unauthorized),
    }
}

/// Who is signed in by this browser's session cookie; 401 when nobody is (an API key is not a
/// session).
#[utoipa::path(
    get, path = "/v1/auth/session", tag = tags::AUTH,
    security(("session" = [])),
    responses(
        (status = 200, description = "The session", body = SessionInfo),
        AuthErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn current(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<SessionInfo>> {
    let session = session_of(&principal)?;
    Ok(Json(SessionInfo::of(&state, session).await?))
}

/// Signs this browser out: ends its session and clears the cookie.
#[utoipa::path(
    delete, path = "/v1/auth/session", tag = tags::AUTH,
    security(("session" = [])),
    responses(
        (status = 204, description = "Signed out",
            headers(("Set-Cookie" = String, description = "`smo1_session=; …; Max-Age=0`"))),
        AuthErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn sign_out(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<impl IntoResponse> {
    session_of(&principal)?;
    if let Some(id) = auth::session_cookie(&headers) {
        state.sessions.delete(id).await?;
    }
    Ok(signed_out())
}

/// Signs the user out everywhere: ends every session of theirs, in every browser.
#[utoipa::path(
    delete, path = "/v1/auth/sessions", tag = tags::AUTH,
    security(("session" = [])),
    responses(
        (status = 204, description = "Every session ended",
            headers(("Set-Cookie" = String, description = "`smo1_session=; …; Max-Age=0`"))),
        AuthErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<impl IntoResponse> {
    session_of(&principal)?;
    let ended = state
        .sessions
        .delete_all_for_user(principal.user_id)
        .await?;
    tracing::info!(ended, "signed out everywhere");
    Ok(signed_out())
}

fn signed_out() -> impl IntoResponse {
    (
        StatusCode::NO_CONTENT,
        AppendHeaders([(SET_COOKIE, auth::clear_session_cookie())]),
    )
}
