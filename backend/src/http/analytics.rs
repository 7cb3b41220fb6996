//! HTTP handlers for `/v1/links/{id}/analytics/*` (one link) and `/v1/analytics/*` (every link of
//! the caller). Both need `links:read`; a link of another user is 404, as everywhere in `/v1`.

use super::auth::{scope, Authorized};
use super::extract::{supported_instant, AppQuery};
use super::tags;
use crate::analytics::queries::{
    self, BreakdownValue, ClickCursor, Counts, Dimension, Interval, OtherCounts, Point, Range,
    RecentClick, Subject, DASHBOARD_DIMENSIONS, DIMENSIONS,
};
use crate::clickhouse::{ClickHouse, ClickHouseError};
use crate::error::{AppError, AuthErrors, ErrorBody, LinkNotFound, Result, ScopeErrors};
use crate::links::repo as links;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The analytics routes (API key auth is applied by the caller).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(link_summary))
        .routes(routes!(link_timeseries))
        .routes(routes!(link_breakdown))
        .routes(routes!(link_clicks))
        .routes(routes!(link_dashboard))
        .routes(routes!(account_summary))
        .routes(routes!(account_timeseries))
        .routes(routes!(account_breakdown))
        .routes(routes!(account_clicks))
        .routes(routes!(account_dashboard))
}

/// The range every analytics query shares (each endpoint's query type documents the fields).
struct RangeParams {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    tz: Option<String>,
    include_bots: Option<bool>,
}

impl RangeParams {
    fn validate(self, default_span: Duration, max_span: Duration) -> Result<Range> {
        let tz = match self.tz.as_deref() {
            None => Tz::UTC,
            Some(name) => name.parse().map_err(|_| {
                AppError::Validation(
                    "tz must be an IANA time zone name such as Europe/Berlin".into(),
                )
            })?,
        };
        let to = match supported_instant("to", self.to)? {
            Some(to) => to,
            None => next_hour(Utc::now()),
        };
        let from = match supported_instant("from", self.from)? {
            Some(from) => from,
            None => to - default_span,
        };
        if from >= to {
            return Err(AppError::Validation("from must be before to".into()));
        }
        if to - from > max_span {
            return Err(AppError::Validation(format!(
                "the range may span at most {} days",
                max_span.num_days()
            )));
        }
        Ok(Range {
            from,
            to,
            tz,
            include_bots: self.include_bots.unwrap_or(false),
        })
    }
}

impl RangeParams {
    /// The range of a series: its default span and longest range depend on the interval.
    fn validate_series(self, interval: Interval) -> Result<Range> {
        let default_span = match interval {
            Interval::Hour => Duration::hours(24),
            Interval::Day => Duration::days(30),
        };
        self.validate(default_span, queries::max_span(interval))
    }
}

fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(Duration::hours(1)).unwrap_or(now) + Duration::hours(1)
}

fn limit(raw: Option<u32>, default: u32) -> Result<u32> {
    let limit = raw.unwrap_or(default);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::Validation("limit must be 1 to 100".into()))
    }
}

/// The caller's link, or 404 — also for ids that are not UUIDs and links of other users.
async fn link_subject(state: &AppState, user_id: Uuid, raw_id: &str) -> Result<Subject> {
    let link_id: Uuid = raw_id.parse().map_err(|_| AppError::NotFound("link"))?;
    links::find(&state.db, user_id, link_id)
        .await?
        .ok_or(AppError::NotFound("link"))?;
    Ok(Subject::Link { user_id, link_id })
}

/// The 422 of every analytics operation: the range has rules beyond each parameter's own.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "`validation_failed`: `from` is not before `to`, a date is before 1970 or \
        from 2100 on, the range is longer than 366 days (31 with `interval=hour`), `tz` is not an IANA time zone name, a \
        `cursor` is not a `next_cursor` this API gave, or a parameter is outside its declared \
        constraints or unknown"
)]
pub struct AnalyticsQueryErrors(pub ErrorBody);

/// The `{dimension}` path parameter: one of [`DIMENSIONS`], listed from it so the document and
/// the check cannot disagree.
struct DimensionName;

impl PartialSchema for DimensionName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(DIMENSIONS.iter().map(|d| d.name)))
            .into()
    }
}

impl ToSchema for DimensionName {}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// Start, inclusive (RFC 3339; write `Z` or percent-encode `+`). Default: `to` minus 30 days.
    from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339). Default: the next whole UTC hour.
    to: Option<DateTime<Utc>>,
    /// IANA time zone name.
    #[param(default = "UTC", example = "Europe/Berlin")]
    tz: Option<String>,
    /// Count bots in `clicks` and `unique_visitors`; `bot_clicks` is always given.
    #[param(default = false)]
    include_bots: Option<bool>,
}

/// Totals over a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct Summary {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    include_bots: bool,
    #[serde(flatten)]
    counts: Counts,
}

async fn summary(state: &AppState, subject: Subject, query: SummaryQuery) -> Result<Json<Summary>> {
    let range = RangeParams {
        from: query.from,
        to: query.to,
        tz: query.tz,
        include_bots: query.include_bots,
    }
    .validate(Duration::days(30), queries::max_span(Interval::Day))?;
    let counts = queries::summary(&state.clickhouse, &subject, &range).await?;
    Ok(Json(Summary::new(&range, counts)))
}

impl Summary {
    fn new(range: &Range, counts: Counts) -> Self {
        Self {
            from: range.from,
            to: range.to,
            include_bots: range.include_bots,
            counts,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimeseriesQuery {
    /// Start, inclusive (RFC 3339; write `Z` or percent-encode `+`). Default: `to` minus 30 days.
    from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339). Default: the next whole UTC hour.
    to: Option<DateTime<Utc>>,
    /// IANA time zone name.
    #[param(default = "UTC", example = "Europe/Berlin")]
    tz: Option<String>,
    /// Count bots in `clicks` and `unique_visitors`; `bot_clicks` is always given.
    #[param(default = false)]
    include_bots: Option<bool>,
    /// `hour` (ranges up to 31 days; default span 24 hours) or `day` (up to 366 days; default).
    interval: Option<Interval>,
}

/// Counts per local hour or day, every bucket of the range present (empty ones as zeros). The
/// first and last buckets may be partial: only clicks inside `[from, to)` count.
#[derive(Debug, Serialize, ToSchema)]
pub struct Timeseries {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    timezone: String,
    interval: Interval,
    include_bots: bool,
    points: Vec<Point>,
}

async fn timeseries(
    state: &AppState,
    subject: Subject,
    query: TimeseriesQuery,
) -> Result<Json<Timeseries>> {
    let interval = query.interval.unwrap_or(Interval::Day);
    let range = RangeParams {
        from: query.from,
        to: query.to,
        tz: query.tz,
        include_bots: query.include_bots,
    }
    .validate_series(interval)?;
    let points = queries::timeseries(&state.clickhouse, &subject, &range, interval).await?;
    Ok(Json(Timeseries::new(&range, interval, points)))
}

impl Timeseries {
    fn new(range: &Range, interval: Interval, points: Vec<Point>) -> Self {
        Self {
            from: range.from,
            to: range.to,
            timezone: range.tz.name().to_owned(),
            interval,
            include_bots: range.include_bots,
            points,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    /// Start, inclusive (RFC 3339; write `Z` or percent-encode `+`). Default: `to` minus 30 days.
    from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339). Default: the next whole UTC hour.
    to: Option<DateTime<Utc>>,
    /// IANA time zone name.
    #[param(default = "UTC", example = "Europe/Berlin")]
    tz: Option<String>,
    /// Count bots in `clicks` and `unique_visitors`; `bot_clicks` is always given.
    #[param(default = false)]
    include_bots: Option<bool>,
    /// How many top values; the rest is summed in `other`.
    #[param(minimum = 1, maximum = 100, default = 10)]
    limit: Option<u32>,
}

/// The top values of one dimension by clicks (ties by value), and the rest as `other`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Breakdown {
    dimension: &'static str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    include_bots: bool,
    values: Vec<BreakdownValue>,
    other: OtherCounts,
}

async fn breakdown(
    state: &AppState,
    subject: Subject,
    dimension: &str,
    query: BreakdownQuery,
) -> Result<Json<Breakdown>> {
    let dimension = Dimension::named(dimension).ok_or_else(|| {
        let names: Vec<&str> = DIMENSIONS.iter().map(|d| d.name).collect();
        AppError::Validation(format!("dimension must be one of {}", names.join(", ")))
    })?;
    let limit = limit(query.limit, 10)?;
    let range = RangeParams {
        from: query.from,
        to: query.to,
        tz: query.tz,
        include_bots: query.include_bots,
    }
    .validate(Duration::days(30), queries::max_span(Interval::Day))?;
    let top = queries::breakdown(&state.clickhouse, &subject, &range, dimension, limit).await?;
    Ok(Json(Breakdown::new(&range, dimension, top)))
}

impl Breakdown {
    fn new(
        range: &Range,
        dimension: Dimension,
        (values, other): (Vec<BreakdownValue>, OtherCounts),
    ) -> Self {
        Self {
            dimension: dimension.name,
            from: range.from,
            to: range.to,
            include_bots: range.include_bots,
            values,
            other,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClicksQuery {
    /// Start, inclusive (RFC 3339; write `Z` or percent-encode `+`). Default: `to` minus 30 days.
    from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339). Default: the next whole UTC hour.
    to: Option<DateTime<Utc>>,
    /// IANA time zone name of the returned `clicked_at` times.
    #[param(default = "UTC", example = "Europe/Berlin")]
    tz: Option<String>,
    /// List bots' clicks too.
    #[param(default = false)]
    include_bots: Option<bool>,
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Recorded clicks, newest first. No IP address is stored anywhere.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClickPage {
    data: Vec<RecentClick>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

async fn clicks(state: &AppState, subject: Subject, query: ClicksQuery) -> Result<Json<ClickPage>> {
    let limit = limit(query.limit, 50)?;
    let before = match query.cursor.as_deref() {
        Some(raw) => Some(
            ClickCursor::decode(raw)
                .ok_or_else(|| AppError::Validation("invalid cursor".into()))?,
        ),
        None => None,
    };
    let range = RangeParams {
        from: query.from,
        to: query.to,
        tz: query.tz,
        include_bots: query.include_bots,
    }
    .validate(Duration::days(30), queries::max_span(Interval::Day))?;
    let page =
        ClickPage::fetch(&state.clickhouse, &subject, &range, before.as_ref(), limit).await?;
    Ok(Json(page))
}

impl ClickPage {
    async fn fetch(
        ch: &ClickHouse,
        subject: &Subject,
        range: &Range,
        before: Option<&ClickCursor>,
        limit: u32,
    ) -> std::result::Result<Self, ClickHouseError> {
        // One extra row tells whether another page follows.
        let mut data = queries::recent_clicks(ch, subject, range, before, limit + 1).await?;
        let next_cursor = if data.len() > limit as usize {
            data.truncate(limit as usize);
            data.last().map(|last| last.cursor().encode())
        } else {
            None
        };
        Ok(Self { data, next_cursor })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// Start, inclusive (RFC 3339; write `Z` or percent-encode `+`). Default: `to` minus 30 days
    /// (24 hours with `interval=hour`).
    from: Option<DateTime<Utc>>,
    /// End, exclusive (RFC 3339). Default: the next whole UTC hour.
    to: Option<DateTime<Utc>>,
    /// IANA time zone name.
    #[param(default = "UTC", example = "Europe/Berlin")]
    tz: Option<String>,
    /// Count bots in `clicks` and `unique_visitors`, and list their clicks; `bot_clicks` is
    /// always given.
    #[param(default = false)]
    include_bots: Option<bool>,
    /// The series' buckets: `hour` (ranges up to 31 days) or `day` (up to 366 days; default).
    interval: Option<Interval>,
    /// How many top values per breakdown; the rest is summed in `other`.
    #[param(minimum = 1, maximum = 100, default = 10)]
    limit: Option<u32>,
    /// How many recent clicks; page on with the clicks endpoint and `clicks.next_cursor`.
    #[param(minimum = 1, maximum = 100, default = 50)]
    clicks_limit: Option<u32>,
}

/// Everything an analytics page shows over one range. Each part is exactly what its own endpoint
/// answers for the same range: `summary`, `timeseries`, one `breakdowns` entry per dimension
/// (`country`, `device`, `browser`, `os`, `referrer`, `utm_source`, `utm_medium`,
/// `utm_campaign`, `qr`, in this order) and the first page of `clicks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    summary: Summary,
    timeseries: Timeseries,
    breakdowns: Vec<Breakdown>,
    clicks: ClickPage,
}

/// One plan for every question of the page, asked at the same time (the recent clicks, which need
/// no plan, from the start).
async fn dashboard(
    state: &AppState,
    subject: Subject,
    query: DashboardQuery,
) -> Result<Json<Dashboard>> {
    let interval = query.interval.unwrap_or(Interval::Day);
    let limit_values = limit(query.limit, 10)?;
    let limit_clicks = limit(query.clicks_limit, 50)?;
    let range = RangeParams {
        from: query.from,
        to: query.to,
        tz: query.tz,
        include_bots: query.include_bots,
    }
    .validate_series(interval)?;
    let (ch, subject, range) = (&state.clickhouse, &subject, &range);
    let dimensions: Vec<Dimension> = DASHBOARD_DIMENSIONS.to_vec();
    let (overview, clicks) = tokio::try_join!(
        queries::overview(ch, subject, range, interval, &dimensions, limit_values),
        ClickPage::fetch(ch, subject, range, None, limit_clicks)
    )?;
    Ok(Json(Dashboard {
        summary: Summary::new(range, overview.counts),
        timeseries: Timeseries::new(range, interval, overview.points),
        breakdowns: dimensions
            .into_iter()
            .zip(overview.breakdowns)
            .map(|(d, top)| Breakdown::new(range, d, top))
            .collect(),
        clicks,
    }))
}

/// Declares one analytics operation twice, as the same answer about two subjects: one link
/// (`/v1/links/{id}/analytics/…`; another user's link is 404) and every link of the caller
/// (`/v1/analytics/…`). `answer(state, subject, query)` gives the answer.
macro_rules! per_subject {
    (
        $(#[doc = $link_doc:tt])* link $link_fn:ident $link_path:tt,
        $(#[doc = $account_doc:tt])* account $account_fn:ident $account_path:tt,
        $query:ident => $body:ident ($described:tt) from $answer:ident
    ) => {
        $(#[doc = $link_doc])*
        #[utoipa::path(
            get, path = $link_path, tag = tags::ANALYTICS,
            security(("api_key" = ["links:read"])),
            params(("id" = Uuid, Path, description = "Link id"), $query),
            responses(
                (status = 200, description = $described, body = $body),
                AuthErrors,
                ScopeErrors,
                LinkNotFound,
                AnalyticsQueryErrors,
            )
        )]
        #[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
        pub async fn $link_fn(
            State(state): State<AppState>,
            auth: Authorized<scope::LinksRead>,
            Path(id): Path<String>,
            AppQuery(query): AppQuery<$query>,
        ) -> Result<Json<$body>> {
            let subject = link_subject(&state, auth.user_id, &id).await?;
            $answer(&state, subject, query).await
        }

        $(#[doc = $account_doc])*
        #[utoipa::path(
            get, path = $account_path, tag = tags::ANALYTICS,
            security(("api_key" = ["links:read"])),
            params($query),
            responses(
                (status = 200, description = $described, body = $body),
                AuthErrors,
                ScopeErrors,
                AnalyticsQueryErrors,
            )
        )]
        #[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
        pub async fn $account_fn(
            State(state): State<AppState>,
            auth: Authorized<scope::LinksRead>,
            AppQuery(query): AppQuery<$query>,
        ) -> Result<Json<$body>> {
            let subject = Subject::Account {
                user_id: auth.user_id,
            };
            $answer(&state, subject, query).await
        }
    };
}

per_subject! {
    /// Totals of one link: clicks, unique visitors, humans and bots.
    link link_summary "/v1/links/{id}/analytics/summary",
    /// Totals over every link of the caller (deleted links' clicks included).
    account account_summary "/v1/analytics/summary",
    SummaryQuery => Summary ("Totals") from summary
}

per_subject! {
    /// Clicks of one link per local hour or day.
    link link_timeseries "/v1/links/{id}/analytics/timeseries",
    /// Clicks over every link of the caller per local hour or day.
    account account_timeseries "/v1/analytics/timeseries",
    TimeseriesQuery => Timeseries ("The series") from timeseries
}

per_subject! {
    /// One link's recorded clicks, newest first, paged.
    link link_clicks "/v1/links/{id}/analytics/clicks",
    /// Recorded clicks over every link of the caller, newest first, paged.
    account account_clicks "/v1/analytics/clicks",
    ClicksQuery => ClickPage ("One page") from clicks
}

per_subject! {
    /// Everything one link's analytics page shows, in one call: totals, the series, the top values
    /// of every breakdown the page has and the first page of recent clicks, each equal to its own
    /// endpoint's answer.
    link link_dashboard "/v1/links/{id}/analytics/dashboard",
    /// Everything the account's analytics page shows, in one call (see the per-link dashboard).
    account account_dashboard "/v1/analytics/dashboard",
    DashboardQuery => Dashboard ("The whole page") from dashboard
}

/// Top values of one link's clicks by a dimension: `country`, `region`, `city`, `device`,
/// `browser`, `os`, `referrer` (domain), `utm_source`, `utm_medium`, `utm_campaign`, `utm_term`,
/// `utm_content`, `qr` (`qr` for scanned QR codes, `link` for every other click).
#[utoipa::path(
    get, path = "/v1/links/{id}/analytics/breakdown/{dimension}", tag = tags::ANALYTICS,
    security(("api_key" = ["links:read"])),
    params(
        ("id" = Uuid, Path, description = "Link id"),
        ("dimension" = inline(DimensionName), Path, description = "What to break down by"),
        BreakdownQuery
    ),
    responses(
        (status = 200, description = "Top values and the rest", body = Breakdown),
        AuthErrors,
        ScopeErrors,
        LinkNotFound,
        AnalyticsQueryErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, link_id = %id))]
pub async fn link_breakdown(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
    Path((id, dimension)): Path<(String, String)>,
    AppQuery(query): AppQuery<BreakdownQuery>,
) -> Result<Json<Breakdown>> {
    let subject = link_subject(&state, auth.user_id, &id).await?;
    breakdown(&state, subject, &dimension, query).await
}

/// Top values over every link of the caller by a dimension (see the per-link breakdown).
#[utoipa::path(
    get, path = "/v1/analytics/breakdown/{dimension}", tag = tags::ANALYTICS,
    security(("api_key" = ["links:read"])),
    params(("dimension" = inline(DimensionName), Path, description = "What to break down by"), BreakdownQuery),
    responses(
        (status = 200, description = "Top values and the rest", body = Breakdown),
        AuthErrors,
        ScopeErrors,
        AnalyticsQueryErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn account_breakdown(
    State(state): State<AppState>,
    auth: Authorized<scope::LinksRead>,
    Path(dimension): Path<String>,
    AppQuery(query): AppQuery<BreakdownQuery>,
) -> Result<Json<Breakdown>> {
    let subject = Subject::Account {
        user_id: auth.user_id,
    };
    breakdown(&state, subject, &dimension, query).await
}
