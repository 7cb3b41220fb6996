//! Passwordless sign-in to the dashboard (SPEC §9): a person asks for a link by email, the mail
//! carries a single-use token valid for 15 minutes, and opening it yields the user to start a
//! session for ([`crate::sessions`]).
//!
//! Nothing a caller answers may tell whether an account exists: [`SignIn::request`] succeeds the
//! same way for every well-formed email within the limits, and the mail (if any) is sent in the
//! background, so SMTP time does not tell either. What remains is one indexed insert (about a
//! millisecond) for admitted emails; the per-email limit allows too few samples to measure it
//! through network jitter. Who gets a link is `REGISTRATION`:
//! `closed` (existing users), `invite` (plus the invite list) or `open` (anyone; redeeming
//! creates the user). Requests are limited per email and per client IP (IPv6: per /64) over a
//! sliding 15 minutes; limits, like sessions, live in Redis, so without Redis sign-in answers
//! [`AppError::SignInUnavailable`].

pub mod repo;
pub mod token;

use crate::cache::Redis;
use crate::config::{Registration, SignInConfig};
use crate::error::{AppError, Result};
use crate::mail::Mailer;
use crate::periodic::{PassMetrics, Periodic};
use crate::sliding_window;
use chrono::{DateTime, TimeDelta, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a sign-in link works.
pub const TOKEN_TTL: TimeDelta = TimeDelta::minutes(15);
/// The window of the per-email and per-IP request limits.
pub const LIMIT_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Where sign-in links point, under `PUBLIC_URL`; the token is the `token` query parameter.
pub const CONFIRM_PATH: &str = "/dashboard/sign-in/confirm";

/// A token just issued: `token` goes to the person (mail or `admin sign-in-link`), never stored.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub email: String,
    pub expires_at: DateTime<Utc>,
}

/// The link that redeems `token`.
pub fn confirm_url(public_url: &str, token: &str) -> String {
    // Tokens are URL-safe base64: nothing to escape.
    format!("{public_url}{CONFIRM_PATH}?token={token}")
}

/// `email` trimmed, if it is an address we can mail (lettre's syntax check, 3-320 characters).
pub fn normalize_email(email: &str) -> Result<String> {
    let email = email.trim();
    let valid = (3..=320).contains(&email.len()) && email.parse::<lettre::Address>().is_ok();
    if valid {
        Ok(email.to_owned())
    } else {
        Err(AppError::Validation(
            "email must be an email address".into(),
        ))
    }
}

/// Issues a sign-in token for `email` if `registration` lets that email sign in: an existing
/// user always; otherwise an invited email under `invite`, anyone under `open`. `None` means
/// "send nothing", and the caller must answer exactly as for `Some`.
#[tracing::instrument(skip(db))]
pub async fn issue(
    db: &PgPool,
    registration: Registration,
    email: &str,
    ip: Option<IpAddr>,
) -> Result<Option<IssuedToken>> {
    let email = normalize_email(email)?;
    let user_id = repo::find_user_id(db, &email).await?;
    let allowed = match (user_id, registration) {
        (Some(_), _) | (None, Registration::Open) => true,
        (None, Registration::Invite) => repo::is_invited(db, &email).await?,
        (None, Registration::Closed) => false,
    };
    if !allowed {
        return Ok(None);
    }
    let token = token::generate();
    let expires_at = repo::insert_token(db, &token.hash, &email, user_id, ip, TOKEN_TTL).await?;
    Ok(Some(IssuedToken {
        token: token.secret,
        email,
        expires_at,
    }))
}

/// Uses `token` up and answers whom it signs in. A token for someone without an account creates
/// the user, if `registration` still allows it now (an invite may have been withdrawn, or
/// registration closed, since the link was sent). Unknown, used, expired and no-longer-allowed
/// tokens are all [`AppError::SignInLinkInvalid`].
#[tracing::instrument(skip_all)]
pub async fn redeem(db: &PgPool, registration: Registration, token: &str) -> Result<Uuid> {
    if !token::is_well_formed(token) {
        return Err(AppError::SignInLinkInvalid);
    }
    let redeemed = repo::redeem(db, &token::hash(token))
        .await?
        .ok_or(AppError::SignInLinkInvalid)?;
    if let Some(user_id) = redeemed.user_id {
        return Ok(user_id);
    }
    match registration {
        Registration::Open => {}
        Registration::Invite if repo::is_invited(db, &redeemed.email).await? => {
            repo::mark_invite_accepted(db, &redeemed.email).await?;
        }
        Registration::Invite | Registration::Closed => return Err(AppError::SignInLinkInvalid),
    }
    // The one find-or-create of users by email; a race with another first sign-in is settled by
    // the unique index.
    Ok(crate::users::repo::upsert_user(db, &redeemed.email).await?)
}

/// `smo1-origin admin sign-in-link --email`: a sign-in link for an existing user, whatever the
/// registration mode and whether or not SMTP is configured. Not rate limited: operators only.
#[tracing::instrument(skip(db))]
pub async fn operator_link(db: &PgPool, public_url: &str, email: &str) -> Result<String> {
    let email = normalize_email(email)?;
    let user_id = repo::find_user_id(db, &email)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let token = token::generate();
    repo::insert_token(db, &token.hash, &email, Some(user_id), None, TOKEN_TTL).await?;
    Ok(confirm_url(public_url, &token.secret))
}

/// `smo1-origin admin invite --email`: lets `email` sign in under `REGISTRATION=invite`;
/// `false` when it was already invited.
pub async fn invite(db: &PgPool, email: &str) -> Result<bool> {
    let email = normalize_email(email)?;
    Ok(repo::add_invite(db, &email).await?)
}

/// The rate-limit identifier of an email: a hash, so Redis keys hold no addresses.
fn email_identifier(email: &str) -> String {
    let digest = Sha256::digest(email.to_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts one sign-in request against the per-IP and then the per-email limit; over either,
/// [`AppError::RateLimited`] (the same for known and unknown emails).
#[tracing::instrument(skip(redis, config, email))]
pub async fn check_limits(
    redis: &Redis,
    config: &SignInConfig,
    email: &str,
    ip: IpAddr,
) -> Result<()> {
    let limits = [
        (
            format!("signin-ip:{}", crate::client_ip::bucket(ip)),
            config.limit_per_ip,
        ),
        (
            format!("signin-email:{}", email_identifier(email)),
            config.limit_per_email,
        ),
    ];
    for (identifier, limit) in limits {
        let decision = sliding_window::count(redis, &identifier, limit, LIMIT_WINDOW)
            .await
            .map_err(AppError::SignInUnavailable)?;
        if !decision.allowed {
            metrics::counter!(crate::metrics::SIGN_IN_RATE_LIMITED).increment(1);
            return Err(AppError::RateLimited {
                retry_after_secs: decision.retry_after_secs,
            });
        }
    }
    Ok(())
}

/// How often expired sign-in tokens are deleted.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);

/// Deletes expired sign-in tokens (used or not) every `interval`, so the table holds about a
/// quarter of an hour of requests; started by [`crate::app::Background`].
pub fn start_pruning(db: PgPool, interval: Duration) -> Periodic {
    Periodic::start(
        "sign-in token pruning",
        interval,
        PassMetrics {
            done: crate::metrics::SIGN_IN_TOKENS_PRUNED,
            failures: crate::metrics::SIGN_IN_TOKEN_PRUNE_FAILURES,
        },
        move || {
            let db = db.clone();
            async move { repo::delete_expired(&db, Utc::now()).await }
        },
    )
}

/// Everything sign-in needs, as handles: what the web layer holds.
#[derive(Clone)]
pub struct SignIn {
    pub db: PgPool,
    pub redis: Redis,
    /// `None` without SMTP: links come from `admin sign-in-link` only.
    pub mailer: Option<Mailer>,
    pub config: Arc<SignInConfig>,
}

impl SignIn {
    /// "Mail me a sign-in link": checks the limits, issues a token if this email may sign in and
    /// mails it in the background. `Ok(())` whether or not a mail goes out.
    #[tracing::instrument(skip(self, email))]
    pub async fn request(&self, email: &str, ip: IpAddr) -> Result<()> {
        let email = normalize_email(email)?;
        check_limits(&self.redis, &self.config, &email, ip).await?;
        let Some(issued) = issue(&self.db, self.config.registration, &email, Some(ip)).await?
        else {
            return Ok(());
        };
        let Some(mailer) = self.mailer.clone() else {
            tracing::warn!(
                "SMTP_URL is not set: no sign-in mail sent; use `smo1-origin admin sign-in-link`"
            );
            return Ok(());
        };
        let link = confirm_url(&self.config.public_url, &issued.token);
        tokio::spawn(async move {
            if let Err(e) = mailer
                .send_sign_in(&issued.email, &link, TOKEN_TTL.num_minutes())
                .await
            {
                metrics::counter!(crate::metrics::SIGN_IN_MAIL_FAILED).increment(1);
                tracing::error!(error = %e, "sending a sign-in mail failed");
            }
        });
        Ok(())
    }

    /// Uses up a sign-in token: see [`redeem`].
    pub async fn redeem(&self, token: &str) -> Result<Uuid> {
        redeem(&self.db, self.config.registration, token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_confirm_page() {
        assert_eq!(
            confirm_url("https://links.example.com", "abc"),
            "https://links.example.com/dashboard/sign-in/confirm?token=abc"
        );
    }

    #[test]
    fn emails_are_trimmed_and_checked() {
        assert_eq!(
            normalize_email(" Ann@Example.com ").unwrap(),
            "Ann@Example.com"
        );
        assert!(normalize_email("not an email").is_err());
        assert!(normalize_email("a@").is_err());
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(320))).is_err());
    }

    #[test]
    fn email_limits_ignore_case_and_hide_the_address() {
        let id = email_identifier("Ann@Example.com");
        assert_eq!(id, email_identifier("ann@example.com"));
        assert!(!id.contains("ann"));
        assert_eq!(id.len(), 32);
    }
}
