//! Domain operations that span PostgreSQL, DNS and the cache: adding, verifying, re-checking,
//! changing and removing domains, and the `domain:{hostname}` entry the edge reads.

use super::dns::Check;
use super::repo::{self, CheckRecord, Domain, DomainStatus, Due, RecordConflict};
use crate::error::{AppError, Result};
use crate::links::repo::Queued;
use crate::links::service::{invalidate_queued, read_through, validate_destination};
use crate::periodic::{PassMetrics, Periodic};
use crate::state::AppState;
use smo1_core::destination::normalise_host;
use smo1_core::domain::{normalise_hostname, DomainEntry, DomainSettings};
use std::sync::Arc;
use uuid::Uuid;

/// What a check makes of a domain: found → verified; missing or wrong → a failure, which turns a
/// verified domain `failed` only at the `limit`-th in a row (a record briefly gone during a DNS
/// change costs nothing) and leaves others as they are; no answer → nothing changes but the
/// reason (an outage of our resolver says nothing about the domain).
pub fn after_check(status: DomainStatus, failures: i32, check: &Check, limit: u32) -> CheckRecord {
    match check {
        Check::Verified => CheckRecord {
            status: DomainStatus::Verified,
            consecutive_failures: 0,
            failure_reason: None,
        },
        Check::Failed(reason) => {
            let failures = failures.saturating_add(1);
            let status = match status {
                DomainStatus::Verified if failures < limit as i32 => DomainStatus::Verified,
                DomainStatus::Verified => DomainStatus::Failed,
                other => other,
            };
            CheckRecord {
                status,
                consecutive_failures: failures,
                failure_reason: Some(reason.clone()),
            }
        }
        Check::Inconclusive(reason) => CheckRecord {
            status,
            consecutive_failures: failures,
            failure_reason: Some(reason.clone()),
        },
    }
}

/// A verification token: 32 random letters and digits after a recognisable prefix.
fn new_token() -> String {
    use rand::distr::{Alphanumeric, SampleString};
    format!(
        "smo1-verify-{}",
        Alphanumeric.sample_string(&mut rand::rng(), 32)
    )
}

/// Adds `raw` as a pending domain of the user; 409 `domain_taken` when the user has it already.
pub async fn add(state: &AppState, user_id: Uuid, raw: &str) -> Result<Domain> {
    let hostname = normalise_hostname(raw).map_err(|e| AppError::Validation(e.to_string()))?;
    if state
        .own_hosts
        .iter()
        .any(|own| normalise_host(own) == hostname)
    {
        return Err(AppError::Validation(
            "hostname is one of this service's own domains".into(),
        ));
    }
    repo::insert(&state.db, user_id, &hostname, &new_token())
        .await?
        .ok_or(AppError::DomainTaken)
}

/// Looks the domain's challenge record up now and stores the outcome.
pub async fn verify(state: &AppState, user_id: Uuid, id: Uuid) -> Result<Domain> {
    let domain = repo::find(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("domain"))?;
    let due = Due {
        id: domain.id,
        hostname: domain.hostname,
        verification_token: domain.verification.value,
        status: domain.status.as_str().to_owned(),
        consecutive_failures: domain.consecutive_failures,
    };
    check(state, &due)
        .await?
        .ok_or(AppError::NotFound("domain"))
}

/// Checks one domain, stores the outcome and invalidates what it changed; `None` when the domain
/// went away meanwhile.
async fn check(state: &AppState, due: &Due) -> Result<Option<Domain>> {
    let outcome = state
        .dns
        .check(&due.hostname, &due.verification_token)
        .await;
    let limit = state.config.domains.domain_failures_before_unverified;
    let mut record = after_check(due.status(), due.consecutive_failures, &outcome, limit);
    let stored = match repo::record_check(&state.db, due.id, &record).await? {
        Ok(stored) => stored,
        Err(RecordConflict::VerifiedElsewhere) => {
            record.status = due.status();
            record.failure_reason = Some(format!(
                "{} is verified by another account; it must remove it first",
                due.hostname
            ));
            repo::record_check(&state.db, due.id, &record)
                .await?
                .map_err(|_| AppError::Internal("domain check conflicted twice".into()))?
        }
    };
    invalidate_queued(state, Queued::Domain(&due.hostname)).await?;
    metrics::counter!(crate::metrics::DOMAIN_CHECKS, "outcome" => match outcome {
        Check::Verified => "verified",
        Check::Failed(_) => "failed",
        Check::Inconclusive(_) => "inconclusive",
    })
    .increment(1);
    Ok(stored)
}

/// Most domains checked in one pass, and at once (a slow DNS answer holds up its group only).
const RECHECK_BATCH: i64 = 500;
const RECHECK_CONCURRENCY: usize = 8;

/// One re-check pass: every domain not checked for half the interval (so a manual check
/// postpones its next one), pending and failed ones included, which recover once their record
/// appears. Answers how many were checked.
pub async fn recheck(state: &AppState) -> Result<u64> {
    let min_age = state.config.domains.domain_recheck_interval / 2;
    let due = repo::due(&state.db, min_age, RECHECK_BATCH).await?;
    let mut done = 0;
    for group in due.chunks(RECHECK_CONCURRENCY) {
        let mut checks = Vec::with_capacity(group.len());
        for domain in group {
            checks.push(check(state, domain));
        }
        for outcome in futures_util::future::join_all(checks).await {
            outcome?;
            done += 1;
        }
    }
    Ok(done)
}

/// Re-checks domains every `DOMAIN_RECHECK_INTERVAL_SECS`.
pub fn start_recheck(state: &AppState) -> Periodic {
    let state = state.clone();
    Periodic::start(
        "domain re-check",
        state.config.domains.domain_recheck_interval,
        PassMetrics {
            done: crate::metrics::DOMAIN_RECHECKS,
            failures: crate::metrics::DOMAIN_RECHECK_FAILURES,
        },
        move || {
            let state = state.clone();
            async move { recheck(&state).await }
        },
    )
}

/// A change of a domain's targets: `None` leaves one alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TargetsPatch {
    pub root_redirect: Option<Option<String>>,
    pub not_found_redirect: Option<Option<String>>,
}

/// Sets where the domain's root and unknown slugs go, each validated like a link's destination
/// (and never the domain itself).
pub async fn update(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
    patch: TargetsPatch,
) -> Result<Domain> {
    let domain = repo::find(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("domain"))?;
    let target = |field: &'static str, change: Option<Option<String>>, current: Option<String>| {
        let host = domain.hostname.clone();
        async move {
            match change {
                None => Ok(current),
                Some(None) => Ok(None),
                Some(Some(raw)) => validate_destination(state, &raw, Some(&host))
                    .await
                    .map(Some)
                    .map_err(|e| match e {
                        AppError::Validation(message) => {
                            AppError::Validation(format!("{field}: {message}"))
                        }
                        other => other,
                    }),
            }
        }
    };
    let root = target(
        "root_redirect",
        patch.root_redirect,
        domain.root_redirect.clone(),
    )
    .await?;
    let not_found = target(
        "not_found_redirect",
        patch.not_found_redirect,
        domain.not_found_redirect.clone(),
    )
    .await?;
    let updated = repo::set_targets(
        &state.db,
        user_id,
        id,
        root.as_deref(),
        not_found.as_deref(),
    )
    .await?
    .ok_or(AppError::NotFound("domain"))?;
    invalidate_queued(state, Queued::Domain(&updated.hostname)).await?;
    Ok(updated)
}

/// Removes the domain with its links; its host serves the unavailable page from then on.
pub async fn remove(state: &AppState, user_id: Uuid, id: Uuid) -> Result<()> {
    let removed = repo::delete(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("domain"))?;
    invalidate_queued(state, Queued::Domain(&removed.hostname)).await
}

/// The entry for `hostname` from PostgreSQL, written to Redis like a link entry (verified:
/// `LINK_CACHE_TTL_SECS`; anything else: `NEGATIVE_CACHE_TTL_SECS`).
pub async fn load_and_cache(state: &AppState, hostname: &str) -> Result<DomainEntry> {
    let slot = state.redis.domain_slot(hostname);
    read_through(state, &slot, DomainEntry::to_json, |db| async move {
        Ok(match repo::serving(&db, hostname).await? {
            Some((root_redirect, not_found_redirect)) => (
                DomainEntry::serving(DomainSettings {
                    root_redirect,
                    not_found_redirect,
                }),
                state.config.link_cache_ttl,
            ),
            None => (DomainEntry::unserved(), state.config.negative_cache_ttl),
        })
    })
    .await
}

/// The entry for `hostname` for the origin's own redirects: memory, then Redis, then PostgreSQL,
/// like [`crate::links::service::resolve_cached`].
pub async fn resolve_cached(state: &AppState, hostname: &str) -> Result<Arc<DomainEntry>> {
    let name = crate::cache::Redis::domain_name(hostname);
    if let Some(entry) = state.local_domains.get(&name) {
        return Ok(entry);
    }
    let entry = Arc::new(match state.redis.get_domain(hostname).await {
        Ok(Some(entry)) => entry,
        Ok(None) => load_and_cache(state, hostname).await?,
        Err(e) => {
            metrics::counter!(crate::metrics::LINK_CACHE_READ_FAILURES).increment(1);
            tracing::debug!(error = %e, "domain cache unavailable, reading PostgreSQL");
            load_and_cache(state, hostname).await?
        }
    });
    state.local_domains.put(&name, &entry);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_domain_fails_only_after_the_limit_and_no_answer_changes_nothing() {
        let missing = Check::Failed("no TXT record".into());
        let silent = Check::Inconclusive("no answer".into());
        let one = after_check(DomainStatus::Verified, 0, &missing, 3);
        assert_eq!(
            (one.status, one.consecutive_failures),
            (DomainStatus::Verified, 1)
        );
        assert_eq!(one.failure_reason.as_deref(), Some("no TXT record"));
        let third = after_check(DomainStatus::Verified, 2, &missing, 3);
        assert_eq!(
            (third.status, third.consecutive_failures),
            (DomainStatus::Failed, 3)
        );
        let quiet = after_check(DomainStatus::Verified, 2, &silent, 3);
        assert_eq!(
            (quiet.status, quiet.consecutive_failures),
            (DomainStatus::Verified, 2)
        );
        assert_eq!(quiet.failure_reason.as_deref(), Some("no answer"));
        let pending = after_check(DomainStatus::Pending, 5, &missing, 3);
        assert_eq!(pending.status, DomainStatus::Pending);
        let back = after_check(DomainStatus::Failed, 7, &Check::Verified, 3);
        assert_eq!(
            back,
            CheckRecord {
                status: DomainStatus::Verified,
                consecutive_failures: 0,
                failure_reason: None
            }
        );
    }
}
