//! The cache with its in-process backend (no Redis): hits and misses, what each kind of write
//! invalidates, the race guard at the [`Cache`] level, the redirect hot path's key, TTLs, and
//! the pending invalidations kept for a Redis that did not take them. The tier's own bounds and
//! expiry are tested in `tier.rs`.

use std::time::Duration;

use super::pending::Pending;
use super::*;

const TTL: Duration = Duration::from_mins(1);

fn list(user_id: i64) -> CacheKey {
    CacheKey::UrlList {
        user_id: Some(user_id),
        is_active: None,
        limit: 50,
        extra: String::new(),
    }
}

async fn fill(cache: &Cache, key: &CacheKey, payload: &str) {
    let Lookup::Miss(Some(snapshot)) = cache.lookup(key).await else {
        panic!("{key:?} is not a storable miss");
    };
    cache.put(&snapshot, key, payload).await;
}

async fn hit(cache: &Cache, key: &CacheKey) -> Option<String> {
    match cache.lookup(key).await {
        Lookup::Hit(payload) => Some(payload),
        Lookup::Miss(_) => None,
    }
}

/// Two links (1 with code "a1", 2 with "a2"), every payload of each cached, and a list.
async fn warm() -> Cache {
    let cache = Cache::memory(TTL);
    for (id, code) in [(1, "a1"), (2, "a2")] {
        fill(&cache, &CacheKey::Url(id), &format!("url {id}")).await;
        fill(&cache, &CacheKey::Analytics(id), &format!("stats {id}")).await;
        fill(
            &cache,
            &CacheKey::Redirect(code.into()),
            &format!("to {id}"),
        )
        .await;
    }
    fill(&cache, &list(7), "list").await;
    cache
}

/// Which of the cached payloads of [`warm`] are still hits, by name.
async fn still_cached(cache: &Cache) -> Vec<&'static str> {
    let keys = [
        ("url 1", CacheKey::Url(1)),
        ("stats 1", CacheKey::Analytics(1)),
        ("redirect 1", CacheKey::Redirect("a1".into())),
        ("url 2", CacheKey::Url(2)),
        ("stats 2", CacheKey::Analytics(2)),
        ("redirect 2", CacheKey::Redirect("a2".into())),
        ("list", list(7)),
    ];
    let mut cached = Vec::new();
    for (name, key) in keys {
        if hit(cache, &key).await.is_some() {
            cached.push(name);
        }
    }
    cached
}

#[tokio::test]
async fn a_stored_payload_is_a_hit_and_other_keys_stay_misses() {
    let cache = Cache::memory(TTL);
    assert_eq!(hit(&cache, &CacheKey::Url(1)).await, None);
    fill(&cache, &CacheKey::Url(1), "one").await;
    assert_eq!(hit(&cache, &CacheKey::Url(1)).await.as_deref(), Some("one"));
    assert_eq!(hit(&cache, &CacheKey::Url(2)).await, None);
    assert_eq!(
        hit(&cache, &CacheKey::Analytics(1)).await,
        None,
        "another kind"
    );
    assert_eq!(
        hit(&cache, &list(8)).await,
        None,
        "a list of other parameters"
    );
    assert_eq!(cache.metrics().memory_hit.get(), 1);
    assert_eq!(cache.metrics().memory_miss.get(), 5);
}

#[tokio::test]
async fn a_link_write_invalidates_that_links_payloads_and_every_list_only() {
    let cache = warm().await;
    cache.invalidate(Invalidation::link(1, "a1")).await;
    assert_eq!(
        still_cached(&cache).await,
        ["url 2", "stats 2", "redirect 2"]
    );
}

#[tokio::test]
async fn new_clicks_invalidate_only_the_analytics_of_their_links() {
    let cache = warm().await;
    cache.invalidate_analytics(&[1]).await;
    assert_eq!(
        still_cached(&cache).await,
        [
            "url 1",
            "redirect 1",
            "url 2",
            "stats 2",
            "redirect 2",
            "list"
        ]
    );
}

#[tokio::test]
async fn an_owner_change_invalidates_details_and_lists_but_keeps_redirects() {
    let cache = warm().await;
    cache.invalidate(Invalidation::owner_changed([1])).await;
    assert_eq!(
        still_cached(&cache).await,
        ["stats 1", "redirect 1", "url 2", "stats 2", "redirect 2"]
    );
}

#[tokio::test]
async fn a_payload_loaded_before_a_write_is_not_stored_after_it() {
    let cache = Cache::memory(TTL);
    let (detail, lists) = (CacheKey::Url(1), list(7));
    let (Lookup::Miss(Some(before)), Lookup::Miss(Some(list_before))) =
        (cache.lookup(&detail).await, cache.lookup(&lists).await)
    else {
        panic!("storable misses expected");
    };
    cache.invalidate(Invalidation::link(1, "a1")).await;
    cache.put(&before, &detail, "stale").await;
    cache.put(&list_before, &lists, "stale").await;
    assert_eq!(hit(&cache, &detail).await, None);
    assert_eq!(hit(&cache, &lists).await, None);
    // A write to another link refuses nothing but the lists.
    let Lookup::Miss(Some(again)) = cache.lookup(&detail).await else {
        panic!("miss expected");
    };
    cache.invalidate(Invalidation::link(2, "a2")).await;
    cache.put(&again, &detail, "fresh").await;
    assert_eq!(hit(&cache, &detail).await.as_deref(), Some("fresh"));
}

#[tokio::test]
async fn a_cached_redirect_serves_the_hot_path_by_its_code_until_its_link_changes() {
    let cache = Cache::memory(TTL);
    assert!(cache.get_local_redirect("abc").is_none());
    fill(
        &cache,
        &CacheKey::Redirect("abc".into()),
        "https://example.com/",
    )
    .await;
    let local = cache.get_local_redirect("abc").expect("hot-path hit");
    assert_eq!(local.payload, "https://example.com/");
    assert!(cache.get_local_redirect("abd").is_none());
    cache.invalidate(Invalidation::link(9, "abc")).await;
    assert!(cache.get_local_redirect("abc").is_none());
}

#[test]
fn analytics_live_at_most_analytics_ttl_and_the_rest_the_configured_ttl() {
    assert_eq!(CacheKey::Analytics(1).ttl(TTL), ANALYTICS_TTL);
    assert_eq!(CacheKey::Url(1).ttl(TTL), TTL);
    assert_eq!(CacheKey::Redirect("a".into()).ttl(TTL), TTL);
    assert_eq!(list(1).ttl(TTL), TTL);
    let short = ANALYTICS_TTL / 2;
    assert_eq!(
        CacheKey::Analytics(1).ttl(short),
        short,
        "a shorter TTL wins"
    );
}

#[tokio::test]
async fn payloads_expire_after_the_configured_ttl() {
    let cache = Cache::memory(Duration::ZERO);
    fill(&cache, &CacheKey::Url(1), "one").await;
    assert_eq!(hit(&cache, &CacheKey::Url(1)).await, None);
}

#[test]
fn an_invalidation_bumps_the_version_of_each_payload_it_changed_once() {
    let mut inv = Invalidation::link(1, "a1");
    inv.merge(Invalidation::analytics(&[1, 2]));
    inv.merge(Invalidation::owner_changed([3]));
    assert_eq!(
        inv.version_keys(),
        [
            "v:code:a1",
            "v:link:1",
            "v:link:3",
            "v:lists",
            "v:stats:1",
            "v:stats:2"
        ]
    );
    assert_eq!(
        Invalidation::analytics(&[4]).version_keys(),
        ["v:stats:4"],
        "clicks bump no list"
    );
}

#[test]
fn a_failed_invalidation_waits_merged_with_later_ones_until_redis_takes_them() {
    let pending = Pending::default();
    assert!(!pending.degraded());
    assert!(pending.add(Invalidation::link(1, "a1")), "start a retrier");
    assert!(pending.degraded(), "no shared payload while one waits");
    assert!(
        !pending.add(Invalidation::analytics(&[2])),
        "one retrier at a time"
    );

    let mut expected = Invalidation::link(1, "a1");
    expected.merge(Invalidation::analytics(&[2]));
    let taken = pending.take().expect("waiting");
    assert_eq!(taken, expected, "merged, none dropped");
    // The retry failed: it waits again, and the retrier goes on.
    pending.put_back(taken);
    assert!(!pending.finish());
    assert!(pending.degraded());

    assert_eq!(pending.take(), Some(expected));
    assert!(pending.finish(), "delivered: the retrier ends");
    assert!(!pending.degraded());
    assert!(pending.add(Invalidation::analytics(&[3])), "a new retrier");
}
