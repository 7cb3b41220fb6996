//! The link cache never goes back in time: refills (cache misses read PostgreSQL, then write
//! Redis) racing with changes (update, disable, slug move, delete, re-create) never leave Redis
//! holding a state older than the last committed one — on the default domain and on a custom
//! domain (`link:{domain}:{slug}`), and for a custom domain's own entry (`domain:{hostname}`)
//! racing changes of its targets and status; also when refills read a lagging read replica.

mod common;

use common::{custom, TestApp};
use smo1_core::domain::{DomainEntry, DomainSettings};
use smo1_core::link::{CacheEntry, LinkStatus};
use smo1_origin::config::ReadReplicaConfig;
use smo1_origin::domains;
use smo1_origin::links::{repo, service, Link};
use smo1_origin::state::AppState;
use smo1_testkit::Replication;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Changes made, each raced by refills of every slug involved.
const CHANGES: usize = 1_000;
/// Refill loops running against each change.
const REFILLERS: usize = 3;

const SLUG_A: &str = "race-a";
const SLUG_B: &str = "race-b";

/// What a visitor should get for `slug` on `domain` now, by PostgreSQL.
async fn truth(state: &AppState, domain: Option<&str>, slug: &str) -> CacheEntry {
    match repo::find_by_slug(&state.db, domain, slug)
        .await
        .expect("read")
    {
        Some(record) => CacheEntry::found(record),
        None => CacheEntry::missing(),
    }
}

/// Refills every slug of `slugs` over and over until `stop`.
fn refiller(
    state: AppState,
    domain: Option<String>,
    slugs: Vec<String>,
    stop: Arc<AtomicBool>,
    refills: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            for slug in &slugs {
                service::load_and_cache(&state, domain.as_deref(), slug)
                    .await
                    .expect("refill");
                refills.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// The `n`th change to `link`; answers the link afterwards (`None`: deleted).
async fn change(
    state: &AppState,
    user: Uuid,
    domain: Option<&str>,
    link: Option<Link>,
    n: usize,
) -> Option<Link> {
    let Some(link) = link else {
        return Some(
            service::create(
                state,
                user,
                on(domain, custom(SLUG_A, &format!("https://example.com/{n}"))),
            )
            .await
            .expect("create"),
        );
    };
    let patch = match n % 5 {
        0 => service::LinkPatch {
            destination: Some(format!("https://example.com/{n}")),
            ..Default::default()
        },
        1 => service::LinkPatch {
            status: Some(match link.status {
                LinkStatus::Active => LinkStatus::Disabled,
                _ => LinkStatus::Active,
            }),
            ..Default::default()
        },
        2 => service::LinkPatch {
            custom_slug: Some(Some(
                if link.custom_slug.as_deref() == Some(SLUG_A) {
                    SLUG_B
                } else {
                    SLUG_A
                }
                .into(),
            )),
            ..Default::default()
        },
        3 => {
            service::delete(state, user, link.id).await.expect("delete");
            return None;
        }
        _ => service::LinkPatch {
            title: Some(Some(format!("title {n}"))),
            destination: Some(format!("https://example.org/{n}")),
            ..Default::default()
        },
    };
    Some(
        service::update(state, user, link.id, patch)
            .await
            .expect("update"),
    )
}

fn on(domain: Option<&str>, mut input: service::CreateLink) -> service::CreateLink {
    input.domain = domain.map(str::to_owned);
    input
}

/// A verified domain `hostname` of `user`, verified against a real DNS server.
async fn verified_domain(state: &AppState, user: Uuid, hostname: &str) -> domains::Domain {
    let dns = smo1_testkit::DnsServer::start().await;
    let domain = domains::service::add(state, user, hostname)
        .await
        .expect("add domain");
    dns.set_txt(
        &domain.verification.name,
        &[domain.verification.value.as_str()],
    )
    .await;
    let checker =
        smo1_origin::domains::dns::Dns::new(Some(dns.addr), std::time::Duration::from_secs(2))
            .expect("resolver");
    let mut shared = (**state).clone();
    shared.dns = checker;
    let state = smo1_origin::state::AppState::from(shared);
    let domain = domains::service::verify(&state, user, domain.id)
        .await
        .expect("verify");
    assert_eq!(domain.status, domains::repo::DomainStatus::Verified);
    domain
}

/// `changes` changes of one link on `domain`, each raced by refills of every slug involved, Redis
/// checked after each; answers how many refills ran.
async fn race(app: &TestApp, domain: Option<&str>, changes: usize) -> u64 {
    let state = &app.state;
    let user = smo1_origin::users::repo::upsert_user(&state.db, "owner@example.com")
        .await
        .expect("user");
    if let Some(hostname) = domain {
        verified_domain(state, user, hostname).await;
    }
    let mut link = Some(
        service::create(
            state,
            user,
            on(domain, custom(SLUG_A, "https://example.com/start")),
        )
        .await
        .expect("create"),
    );
    let refills = Arc::new(AtomicU64::new(0));
    for n in 0..changes {
        let mut slugs = vec![SLUG_A.to_owned(), SLUG_B.to_owned()];
        slugs.extend(link.as_ref().map(|l| l.uid.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let refillers: Vec<_> = (0..REFILLERS)
            .map(|i| {
                // Each loop starts at another slug, so every slug is being refilled at any time.
                let mut mine = slugs.clone();
                mine.rotate_left(i % slugs.len());
                refiller(
                    state.clone(),
                    domain.map(str::to_owned),
                    mine,
                    stop.clone(),
                    refills.clone(),
                )
            })
            .collect();
        tokio::task::yield_now().await;
        link = change(state, user, domain, link, n).await;
        stop.store(true, Ordering::Relaxed);
        for task in refillers {
            task.await.expect("refiller");
        }
        for slug in &slugs {
            let cached = state.redis.get_link(domain, slug).await.expect("redis");
            if let Some(cached) = cached {
                assert_eq!(
                    cached,
                    truth(state, domain, slug).await,
                    "after change {n}, {slug} is cached in a state other than the committed one"
                );
            }
        }
    }
    let refills = refills.load(Ordering::Relaxed);
    assert!(refills >= changes as u64, "the refills ran");
    refills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_racing_changes_never_leave_an_older_state_cached() {
    let refills = race(&TestApp::start().await, None, CHANGES).await;
    println!("{CHANGES} changes raced by {refills} refills; none left an older state cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_racing_changes_on_a_custom_domain_never_leave_an_older_state_cached() {
    // Fewer: the paths are the same as on the default domain but for the key.
    let refills = race(
        &TestApp::start().await,
        Some("race.brand.test"),
        CHANGES / 4,
    )
    .await;
    println!(
        "{} changes raced by {refills} refills; none left an older state cached",
        CHANGES / 4
    );
}

/// What the edge should get for the custom domain `hostname` now, by PostgreSQL.
async fn domain_truth(state: &AppState, hostname: &str) -> DomainEntry {
    match domains::repo::serving(&state.db, hostname)
        .await
        .expect("read")
    {
        Some((root_redirect, not_found_redirect)) => DomainEntry::serving(DomainSettings {
            root_redirect,
            not_found_redirect,
        }),
        None => DomainEntry::unserved(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn domain_refills_racing_domain_changes_never_leave_an_older_state_cached() {
    const DOMAIN_CHANGES: usize = 300;
    let app = TestApp::start().await;
    let state = &app.state;
    let user = smo1_origin::users::repo::upsert_user(&state.db, "owner@example.com")
        .await
        .expect("user");
    let hostname = "refill.brand.test";
    let domain = verified_domain(state, user, hostname).await;
    for n in 0..DOMAIN_CHANGES {
        let stop = Arc::new(AtomicBool::new(false));
        let refillers: Vec<_> = (0..REFILLERS)
            .map(|_| {
                let state = state.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        domains::service::load_and_cache(&state, hostname)
                            .await
                            .expect("refill");
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        if n % 3 == 2 {
            // A status flip, as a re-check makes it, through the same path.
            let status = if n % 2 == 0 { "failed" } else { "verified" };
            sqlx::query("UPDATE domains SET status = $2::domain_status WHERE id = $1")
                .bind(domain.id)
                .bind(status)
                .execute(&state.db)
                .await
                .expect("flip");
            service::invalidate_queued(state, repo::Queued::Domain(hostname))
                .await
                .expect("invalidate");
        } else {
            domains::service::update(
                state,
                user,
                domain.id,
                domains::service::TargetsPatch {
                    root_redirect: Some(Some(format!("https://brand.example/{n}"))),
                    not_found_redirect: None,
                },
            )
            .await
            .expect("update");
        }
        stop.store(true, Ordering::Relaxed);
        for task in refillers {
            task.await.expect("refiller");
        }
        if let Some(cached) = state.redis.get_domain(hostname).await.expect("redis") {
            assert_eq!(
                cached,
                domain_truth(state, hostname).await,
                "after change {n}, the domain is cached in a state other than the committed one"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_from_a_read_replica_racing_changes_never_leave_an_older_state_cached() {
    const REPLICA_CHANGES: usize = 300;
    let replication = Replication::start().await;
    let (primary, replica) = (replication.primary_url(), replication.replica_url());
    let app = TestApp::start_with(|config| {
        config.data.database_url = primary;
        // Never wait for replay, and never skip the replica: every refill tries it.
        config.data.read_replica = ReadReplicaConfig {
            database_read_url: replica,
            database_read_max_connections: 8,
            database_read_timeout: Duration::from_secs(5),
            database_read_catch_up: Duration::ZERO,
            database_read_retry_after: Duration::from_millis(1),
        };
    })
    .await;
    let refills = race(&app, None, REPLICA_CHANGES).await;
    let outcomes: Vec<String> = app
        .state
        .metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("smo1_read_replica_reads_total{"))
        .map(str::to_owned)
        .collect();
    let served = |outcome: &str| {
        outcomes
            .iter()
            .find_map(|line| {
                line.strip_prefix(&format!(
                    "smo1_read_replica_reads_total{{outcome=\"{outcome}\"}} "
                ))
            })
            .map_or(0, |n| n.trim().parse::<u64>().expect("a counter"))
    };
    assert!(
        served("replica") > 0,
        "the replica served refills: {outcomes:?}"
    );
    assert!(
        served("behind") > 0,
        "the replica lagged behind changes: {outcomes:?}"
    );
    println!(
        "{REPLICA_CHANGES} changes raced by {refills} refills, {} read on the replica and {} \
         on the primary while the replica was behind; none left an older state cached",
        served("replica"),
        served("behind")
    );
}
