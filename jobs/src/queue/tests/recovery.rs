//! The recovery scripts: jobs of workers gone, jobs stranded nowhere, dead jobs redriven.

use super::*;

#[test]
fn recover_unowned_requeues_the_jobs_of_unregistered_workers_only() {
    let (r, k) = (FakeRedis::new(), keys());
    push(&r, &k, &[("a", "{}"), ("b", "{}")]);
    register(&r, &k, "alive", 100);
    register(&r, &k, "gone", 100);
    assert_eq!(apalis_fetch(&r, &k, "alive", 100).unwrap()[0].id, "a");
    assert_eq!(apalis_fetch(&r, &k, "gone", 100).unwrap()[0].id, "b");
    // The worker left the set without its jobs being re-enqueued.
    r.cmd(&["ZREM", &k.workers, "gone"]);
    r.cmd(&["DEL", &k.signal]);
    let (alive, gone) = (
        format!("{}alive", k.inflight),
        format!("{}gone", k.inflight),
    );

    assert_eq!(recover_unowned(&r, &k, &[&alive, &gone]), 1);
    assert_eq!(list(&r, &k.active), ["b"]);
    assert!(!exists(&r, &gone));
    assert_eq!(members(&r, &alive), ["a"], "a live worker keeps its job");
    assert_eq!(list(&r, &k.signal), ["1"]);
    // The recovered job runs again.
    assert_eq!(apalis_fetch(&r, &k, "alive", 100).unwrap()[0].id, "b");

    r.cmd(&["DEL", &k.signal]);
    assert_eq!(recover_unowned(&r, &k, &[&alive]), 0);
    assert!(!exists(&r, &k.signal), "no wake-up for nothing moved");
}

#[test]
fn recover_unowned_requeues_more_jobs_than_lua_can_unpack_at_once() {
    let (r, k) = (FakeRedis::new(), keys());
    let held = ids("job", PAST_UNPACK_LIMIT);
    let gone = format!("{}gone", k.inflight);
    for id in &held {
        r.cmd(&["SADD", &gone, id]);
    }
    assert_eq!(recover_unowned(&r, &k, &[&gone]), PAST_UNPACK_LIMIT as i64);
    let mut active = list(&r, &k.active);
    active.sort();
    assert_eq!(active, held, "each job once");
    assert!(!exists(&r, &gone));
}

/// A queue holding one job in each place a job can be, and `stranded` in none.
fn every_home(r: &FakeRedis, k: &Keys) {
    for id in [
        "ready",
        "scheduled",
        "finished",
        "dead",
        "running",
        "orphaned",
        "stranded",
    ] {
        r.cmd(&["HSET", &k.data, id, "{}"]);
    }
    r.cmd(&["RPUSH", &k.active, "ready"]);
    r.cmd(&["ZADD", &k.scheduled, "500", "scheduled"]);
    r.cmd(&["SADD", &k.done, "finished"]);
    r.cmd(&["SADD", &k.dead, "dead"]);
    register(r, k, "alive", 100);
    r.cmd(&["SADD", &format!("{}alive", k.inflight), "running"]);
    // Held by a worker no longer registered: nothing would run it again either.
    r.cmd(&["SADD", &format!("{}gone", k.inflight), "orphaned"]);
}

const EVERY_ID: [&str; 8] = [
    "ready",
    "scheduled",
    "finished",
    "dead",
    "running",
    "orphaned",
    "stranded",
    "pruned",
];

#[test]
fn recover_stranded_requeues_exactly_the_jobs_that_are_nowhere() {
    let (r, k) = (FakeRedis::new(), keys());
    every_home(&r, &k);
    // "pruned" is in no place and no longer in the data hash: skipped.
    assert_eq!(recover_stranded(&r, &k, &EVERY_ID), 2);
    assert_eq!(list(&r, &k.active), ["ready", "orphaned", "stranded"]);
    assert_eq!(list(&r, &k.signal), ["1"]);
}

#[test]
fn recover_stranded_run_again_requeues_nothing_more() {
    let (r, k) = (FakeRedis::new(), keys());
    every_home(&r, &k);
    recover_stranded(&r, &k, &EVERY_ID);
    r.cmd(&["DEL", &k.signal]);
    assert_eq!(recover_stranded(&r, &k, &EVERY_ID), 0);
    assert_eq!(list(&r, &k.active), ["ready", "orphaned", "stranded"]);
    assert!(!exists(&r, &k.signal));
}

#[test]
fn a_dead_job_is_redriven_due_now_with_its_attempts_reset_and_runs_again() {
    let (r, k) = (FakeRedis::new(), keys());
    push(&r, &k, &[("a", "{}")]);
    register(&r, &k, "w1", 100);
    apalis_fetch(&r, &k, "w1", 100).unwrap();
    // apalis-redis buries a job whose last allowed attempt failed.
    apalis_ack(&r, &k, "w1", "a", "Failed", MAX_ATTEMPTS);
    assert_eq!(members(&r, &k.dead), ["a"]);
    assert_eq!(
        meta_field(&r, &k, "a", "attempts"),
        Some(MAX_ATTEMPTS.to_string())
    );

    assert_eq!(redrive(&r, &k, 200, 10), 1);
    assert!(!exists(&r, &k.dead));
    assert_eq!(
        r.cmd(&["ZSCORE", &k.scheduled, "a"]).bulk().as_deref(),
        Some("200")
    );
    assert_eq!(meta_field(&r, &k, "a", "attempts").as_deref(), Some("0"));
    assert_eq!(
        meta_field(&r, &k, "a", "status").as_deref(),
        Some("Pending")
    );

    assert_eq!(promote(&r, &k, 200), Ok(1));
    let fetched = apalis_fetch(&r, &k, "w1", 200).unwrap();
    assert_eq!(fetched[0].id, "a");
    assert_eq!(fetched[0].meta["attempts"], "0", "the back-off starts over");
}

#[test]
fn redrive_moves_at_most_its_limit_and_an_empty_dead_set_is_a_no_op() {
    let (r, k) = (FakeRedis::new(), keys());
    assert_eq!(redrive(&r, &k, 200, 10), 0);
    assert!(!exists(&r, &k.scheduled));
    for id in ids("d", 3) {
        r.cmd(&["SADD", &k.dead, &id]);
    }
    assert_eq!(redrive(&r, &k, 200, 2), 2);
    assert_eq!(r.cmd(&["SCARD", &k.dead]).int(), 1);
    assert_eq!(r.cmd(&["ZCARD", &k.scheduled]).int(), 2);
    assert_eq!(redrive(&r, &k, 200, 2), 1);
    assert_eq!(r.cmd(&["ZCARD", &k.scheduled]).int(), 3);
}
