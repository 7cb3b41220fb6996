//! PIN and password protection: argon2id hashing and verification with bounded cost, setting and
//! clearing protection, and the edge's unlock check with its lockouts ([`super::attempts`]).
//!
//! Cost: argon2id with m = 19 MiB, t = 2, p = 1 (OWASP's recommended minimum), about 20–50 ms of
//! one core per hash or verification. At most `UNLOCK_VERIFY_CONCURRENCY` run at once, on tokio's
//! blocking pool ([`super::verifier`]); the rest wait and then answer 503 `busy`, so a flood of
//! guesses costs a bounded amount of CPU and memory and never holds the async workers or more
//! than that many database connections that redirects need.

use super::attempts::{self, Reservation};
use super::repo::{self, Link};
use super::service;
use crate::error::{AppError, Result};
use crate::state::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use smo1_core::link::Protection;
use smo1_core::unlock::{self, UnlockOutcome};
use std::net::IpAddr;
use uuid::Uuid;

/// argon2id memory cost in KiB (19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_PARALLELISM: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(format!("argon2 task failed: {e}")))
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `secret`.
async fn hash(state: &AppState, secret: String) -> Result<String> {
    let _permit = state.verifier.permit().await?;
    let salt =
        SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes make a valid salt");
    blocking(move || {
        argon2()
            .hash_password(secret.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::Internal(format!("argon2 hash failed: {e}")))
}

/// Protects the user's link with a PIN or password (replacing any previous one). The edge sees it
/// at once, and every unlock cookie of the link stops working (the link's version changed).
pub async fn set(
    state: &AppState,
    user_id: Uuid,
    id: Uuid,
    kind: Protection,
    secret: String,
) -> Result<Link> {
    unlock::validate_secret(kind, &secret).map_err(|e| AppError::Validation(e.to_string()))?;
    // Hashing is the scarce resource: ids that are not the caller's must not queue for it.
    if !repo::owns(&state.db, user_id, id).await? {
        return Err(AppError::NotFound("link"));
    }
    let hash = hash(state, secret).await?;
    let link = repo::set_protection(&state.db, user_id, id, kind, Some(&hash))
        .await?
        .ok_or(AppError::NotFound("link"))?;
    service::invalidate(state, &link.slugs()).await?;
    crate::achievements::catch_up(&state.db, user_id).await;
    Ok(link)
}

/// Removes the protection of the user's link; the edge redirects at once.
pub async fn clear(state: &AppState, user_id: Uuid, id: Uuid) -> Result<Link> {
    let link = repo::set_protection(&state.db, user_id, id, Protection::None, None)
        .await?
        .ok_or(AppError::NotFound("link"))?;
    service::invalidate(state, &link.slugs()).await?;
    Ok(link)
}

/// Checks a visitor's secret for `slug` on `domain` (`None`: the default domain), from the
/// client address `ip`. Every check first
/// reserves a failed attempt under a per-link lock, so parallel guesses can never exceed the
/// limits; a correct secret then marks its attempt succeeded. Locked out: no secret is checked,
/// not even a correct one, and no verifier is waited for.
pub async fn unlock(
    state: &AppState,
    domain: Option<&str>,
    slug: &str,
    secret: String,
    ip: IpAddr,
) -> Result<UnlockOutcome> {
    let target = repo::find_protection(&state.db, domain, slug)
        .await?
        .ok_or(AppError::NotFound("link"))?;
    let config = &state.config.unlock;
    let max_age = config.unlock_cookie_ttl.as_secs() as i64;
    let unlocked = || {
        let link_id = target.id.to_string();
        let scope = unlock::Scope {
            slug,
            link_id: &link_id,
            version: target.updated_at.timestamp_millis(),
        };
        let expires = chrono::Utc::now().timestamp() + max_age;
        UnlockOutcome::Unlocked {
            cookie: unlock::sign(config.unlock_cookie_secret.expose(), scope, expires),
            max_age,
        }
    };
    // Protection was cleared after the edge read the link: nothing to check.
    let Some(hash) = target.protection_hash.clone() else {
        return Ok(unlocked());
    };
    let ceiling = config.unlock_max_failures_per_link;
    let (attempt, attempts_left) =
        match attempts::reserve_attempt(&state.db, target.id, ip, ceiling).await? {
            Reservation::Locked { retry_after } => {
                metrics::counter!(crate::metrics::UNLOCK_ATTEMPTS, "outcome" => "locked")
                    .increment(1);
                return Ok(UnlockOutcome::Locked { retry_after });
            }
            Reservation::Reserved {
                attempt,
                attempts_left,
            } => (attempt, attempts_left),
        };
    // Only a check that will run waits for a verifier: unknown links and locked-out guesses
    // never take one. A check that found none is not held against the visitor.
    let _permit = match state.verifier.permit().await {
        Ok(permit) => permit,
        Err(busy) => {
            attempts::cancel_attempt(&state.db, attempt).await?;
            return Err(busy);
        }
    };
    let correct = blocking(move || {
        PasswordHash::new(&hash)
            .is_ok_and(|parsed| argon2().verify_password(secret.as_bytes(), &parsed).is_ok())
    })
    .await?;
    if correct {
        attempts::mark_attempt_succeeded(&state.db, attempt).await?;
        metrics::counter!(crate::metrics::UNLOCK_ATTEMPTS, "outcome" => "unlocked").increment(1);
        Ok(unlocked())
    } else {
        metrics::counter!(crate::metrics::UNLOCK_ATTEMPTS, "outcome" => "wrong").increment(1);
        Ok(UnlockOutcome::Wrong { attempts_left })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_carry_the_documented_parameters_and_verify() {
        let salt = SaltString::encode_b64(&[7; 16]).unwrap();
        let hash = argon2().hash_password(b"4821", &salt).unwrap().to_string();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(argon2().verify_password(b"4821", &parsed).is_ok());
        assert!(argon2().verify_password(b"4822", &parsed).is_err());
    }
}
