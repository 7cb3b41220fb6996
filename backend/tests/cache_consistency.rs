//! The link cache never goes back in time: refills (cache misses read PostgreSQL, then write
//! Redis) racing with changes (update, disable, slug move, delete, re-create) never leave Redis
//! holding a state older than the last committed one.

mod common;

use common::{custom, TestApp};
use smo1_core::link::{CacheEntry, LinkStatus};
use smo1_origin::links::{repo, service, Link};
use smo1_origin::state::AppState;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

/// Changes made, each raced by refills of every slug involved.
const CHANGES: usize = 1_000;
/// Refill loops running against each change.
const REFILLERS: usize = 3;

const SLUG_A: &str = "race-a";
const SLUG_B: &str = "race-b";

/// What a visitor should get for `slug` now, by PostgreSQL.
async fn truth(state: &AppState, slug: &str) -> CacheEntry {
    match repo::find_by_slug(&state.db, slug).await.expect("read") {
        Some(record) => CacheEntry::found(record),
        None => CacheEntry::missing(),
    }
}

/// Refills every slug of `slugs` over and over until `stop`.
fn refiller(
    state: AppState,
    slugs: Vec<String>,
    stop: Arc<AtomicBool>,
    refills: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            for slug in &slugs {
                service::load_and_cache(&state, slug).await.expect("refill");
                refills.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// The `n`th change to `link`; answers the link afterwards (`None`: deleted).
async fn change(state: &AppState, user: Uuid, link: Option<Link>, n: usize) -> Option<Link> {
    let Some(link) = link else {
        return Some(
            service::create(
                state,
                user,
                custom(SLUG_A, &format!("https://example.com/{n}")),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refills_racing_changes_never_leave_an_older_state_cached() {
    let app = TestApp::start().await;
    let state = &app.state;
    let user = smo1_origin::users::repo::upsert_user(&state.db, "owner@example.com")
        .await
        .expect("user");
    let mut link = Some(
        service::create(state, user, custom(SLUG_A, "https://example.com/start"))
            .await
            .expect("create"),
    );
    let refills = Arc::new(AtomicU64::new(0));
    for n in 0..CHANGES {
        let mut slugs = vec![SLUG_A.to_owned(), SLUG_B.to_owned()];
        slugs.extend(link.as_ref().map(|l| l.uid.clone()));
        let stop = Arc::new(AtomicBool::new(false));
        let refillers: Vec<_> = (0..REFILLERS)
            .map(|i| {
                // Each loop starts at another slug, so every slug is being refilled at any time.
                let mut mine = slugs.clone();
                mine.rotate_left(i % slugs.len());
                refiller(state.clone(), mine, stop.clone(), refills.clone())
            })
            .collect();
        tokio::task::yield_now().await;
        link = change(state, user, link, n).await;
        stop.store(true, Ordering::Relaxed);
        for task in refillers {
            task.await.expect("refiller");
        }
        for slug in &slugs {
            let cached = state.redis.get_link(slug).await.expect("redis");
            if let Some(cached) = cached {
                assert_eq!(
                    cached,
                    truth(state, slug).await,
                    "after change {n}, {slug} is cached in a state other than the committed one"
                );
            }
        }
    }
    let refills = refills.load(Ordering::Relaxed);
    assert!(refills >= CHANGES as u64, "the refills ran");
    println!("{CHANGES} changes raced by {refills} refills; none left an older state cached");
}
