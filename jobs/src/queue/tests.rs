//! The queue's Lua scripts, run as they are (the same constants [`JobQueue`] sends) in Lua 5.1
//! against the in-memory Redis stand-in, with the key names apalis-redis derives from
//! [`queue_config`], next to apalis-redis' own fetch and acknowledgement scripts
//! (`testdata/apalis-redis-1.0.0`). No Redis server: `cargo test` runs them anywhere.
//!
//! The Rust side of each call (which key goes where) is repeated in the small helpers below
//! because a [`JobQueue`] cannot be built without a Redis connection; keep them in step with
//! the methods they mirror.

use std::collections::BTreeMap;

use super::redis_stand_in::{FakeRedis, Reply};
use super::scripts::*;
use super::*;

mod recovery;

const APALIS_FETCH: &str = include_str!("../../testdata/apalis-redis-1.0.0/fetch_next.lua");
const APALIS_ACK: &str = include_str!("../../testdata/apalis-redis-1.0.0/handle_results.lua");

/// More ids than Lua 5.1 can `unpack()` at once (its limit is about 8,000).
const PAST_UNPACK_LIMIT: usize = 10_000;

struct Keys {
    data: String,
    active: String,
    signal: String,
    meta: String,
    scheduled: String,
    done: String,
    dead: String,
    workers: String,
    /// `<q>:inflight:`, the prefix of every worker's in-flight set.
    inflight: String,
    /// `<q>:completed_total`, the count of pruned finished jobs.
    completed: String,
}

fn keys() -> Keys {
    let c = queue_config("curtain:test");
    Keys {
        data: c.job_data_hash(),
        active: c.active_jobs_list(),
        signal: c.signal_list(),
        meta: c.job_meta_hash(),
        scheduled: c.scheduled_jobs_set(),
        done: c.done_jobs_set(),
        dead: c.dead_jobs_set(),
        workers: c.workers_set(),
        inflight: format!("{}:", c.inflight_jobs_set()),
        completed: "curtain:test:completed_total".to_owned(),
    }
}

fn list(r: &FakeRedis, key: &str) -> Vec<String> {
    r.cmd(&["LRANGE", key, "0", "-1"]).strings()
}

fn members(r: &FakeRedis, key: &str) -> Vec<String> {
    r.cmd(&["SMEMBERS", key]).strings()
}

fn exists(r: &FakeRedis, key: &str) -> bool {
    r.cmd(&["EXISTS", key]).int() == 1
}

fn meta_field(r: &FakeRedis, k: &Keys, id: &str, field: &str) -> Option<String> {
    r.cmd(&["HGET", &format!("{}:{id}", k.meta), field]).bulk()
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    // Zero-padded so that id order is score order where scores tie.
    (0..n).map(|i| format!("{prefix}{i:05}")).collect()
}

// The calls of `JobQueue`, key for key.

fn push(r: &FakeRedis, k: &Keys, jobs: &[(&str, &str)]) -> i64 {
    let mut args = vec![k.meta.as_str()];
    for (id, json) in jobs {
        args.extend([*id, *json]);
    }
    r.eval(PUSH, &[&k.data, &k.active, &k.signal], &args)
        .unwrap()
        .int()
}

fn promote(r: &FakeRedis, k: &Keys, now: u64) -> Result<i64, String> {
    r.eval(
        PROMOTE,
        &[&k.scheduled, &k.active, &k.signal],
        &[&now.to_string(), &PROMOTE_CHUNK.to_string()],
    )
    .map(|reply| reply.int())
}

/// [`JobQueue::promote_all_due`]'s loop.
fn promote_all(r: &FakeRedis, k: &Keys, now: u64) -> Result<i64, String> {
    let mut total = 0;
    loop {
        let moved = promote(r, k, now)?;
        total += moved;
        if moved < PROMOTE_CHUNK as i64 {
            return Ok(total);
        }
    }
}

fn prune(r: &FakeRedis, k: &Keys, limit: usize) -> i64 {
    r.eval(
        PRUNE,
        &[&k.done, &k.data, &k.completed],
        &[&k.meta, &limit.to_string()],
    )
    .unwrap()
    .int()
}

fn recover_unowned(r: &FakeRedis, k: &Keys, inflight_sets: &[&str]) -> i64 {
    r.eval(
        RECOVER_UNOWNED,
        inflight_sets,
        &[&k.workers, &k.inflight, &k.active, &k.signal],
    )
    .unwrap()
    .int()
}

fn recover_stranded(r: &FakeRedis, k: &Keys, job_ids: &[&str]) -> i64 {
    let mut args = vec![k.inflight.as_str()];
    args.extend(job_ids);
    r.eval(
        RECOVER_STRANDED,
        &[
            &k.data,
            &k.active,
            &k.scheduled,
            &k.done,
            &k.dead,
            &k.workers,
            &k.signal,
        ],
        &args,
    )
    .unwrap()
    .int()
}

fn redrive(r: &FakeRedis, k: &Keys, now: u64, limit: usize) -> i64 {
    r.eval(
        REDRIVE_DEAD,
        &[&k.dead, &k.scheduled],
        &[&now.to_string(), &k.meta, &limit.to_string()],
    )
    .unwrap()
    .int()
}

// apalis-redis' side, as its worker calls it.

fn register(r: &FakeRedis, k: &Keys, worker: &str, now: u64) {
    r.cmd(&["ZADD", &k.workers, &now.to_string(), worker]);
}

/// A job as apalis' fetch hands it to a worker.
#[derive(Debug)]
struct Fetched {
    id: String,
    payload: String,
    meta: BTreeMap<String, String>,
}

/// One fetch of at most one job (our `batch_size`).
fn apalis_fetch(r: &FakeRedis, k: &Keys, worker: &str, now: u64) -> Result<Vec<Fetched>, String> {
    let inflight = format!("{}{worker}", k.inflight);
    let reply = r.eval(
        APALIS_FETCH,
        &[
            &k.workers,
            &k.active,
            &inflight,
            &k.data,
            &k.signal,
            &k.meta,
            &k.scheduled,
        ],
        &[&now.to_string(), "1", worker],
    )?;
    let Reply::Array(parts) = reply else {
        panic!("fetch reply: {reply:?}");
    };
    let payloads = parts[0].strings();
    let Reply::Array(metas) = &parts[1] else {
        panic!("fetch meta: {:?}", parts[1]);
    };
    Ok(payloads
        .into_iter()
        .zip(metas)
        .map(|(payload, meta)| {
            let fields = meta.strings();
            Fetched {
                id: fields[0].clone(),
                payload,
                meta: fields[1..]
                    .chunks(2)
                    .map(|p| (p[0].clone(), p[1].clone()))
                    .collect(),
            }
        })
        .collect())
}

/// A worker's acknowledgement of one execution: `Done`, or `Failed` at `attempt`.
fn apalis_ack(r: &FakeRedis, k: &Keys, worker: &str, id: &str, status: &str, attempt: usize) {
    let inflight = format!("{}{worker}", k.inflight);
    r.eval(
        APALIS_ACK,
        &[&inflight, &k.done, &k.dead, &k.scheduled, &k.meta],
        &["0", id, "1000", "null", status, &attempt.to_string()],
    )
    .unwrap();
}

#[test]
fn the_stand_in_refuses_to_unpack_as_many_values_as_redis_refuses() {
    // What makes the backlog tests below able to fail: Redis' Lua 5.1 limit holds here too.
    // Redis 7 answers the same: 7,999 values unpack, 8,000 do not.
    let r = FakeRedis::new();
    let unpack = "local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = i end return #{unpack(t)}";
    assert_eq!(r.eval(unpack, &[], &["7999"]), Ok(Reply::Int(7999)));
    let err = r.eval(unpack, &[], &["8000"]).unwrap_err();
    assert!(err.contains("too many results to unpack"), "{err}");
    // A chunk of the size the scripts use passes through `redis.call` whole.
    let push = "local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = i end \
                return redis.call('RPUSH', KEYS[1], unpack(t))";
    assert_eq!(r.eval(push, &["l"], &["1000"]), Ok(Reply::Int(1000)));
}

#[test]
fn apalis_own_promotion_fails_on_a_large_due_backlog() {
    // Defect 1 of apalis-redis 1.0 (DEPENDENCIES.md), reproduced: why `promote_due` exists.
    let (r, k) = (FakeRedis::new(), keys());
    register(&r, &k, "w1", 100);
    for id in ids("job", PAST_UNPACK_LIMIT) {
        r.cmd(&["ZADD", &k.scheduled, "50", &id]);
    }
    let err = apalis_fetch(&r, &k, "w1", 100).unwrap_err();
    assert!(err.contains("unpack"), "{err}");
}

#[test]
fn a_backlog_larger_than_lua_can_unpack_is_promoted_in_chunks_and_then_fetched() {
    let (r, k) = (FakeRedis::new(), keys());
    let backlog = ids("job", PAST_UNPACK_LIMIT);
    for id in &backlog {
        r.cmd(&["HSET", &k.data, id, "{}"]);
        r.cmd(&["ZADD", &k.scheduled, "50", id]);
    }
    assert_eq!(
        promote(&r, &k, 100),
        Ok(PROMOTE_CHUNK as i64),
        "one chunk per call"
    );
    assert_eq!(
        promote_all(&r, &k, 100),
        Ok((PAST_UNPACK_LIMIT - PROMOTE_CHUNK) as i64)
    );
    assert!(!exists(&r, &k.scheduled));
    assert_eq!(list(&r, &k.active), backlog, "every job once, in order");
    // With nothing left to promote, apalis' fetch no longer wedges.
    register(&r, &k, "w1", 100);
    let fetched = apalis_fetch(&r, &k, "w1", 100).unwrap();
    assert_eq!(fetched[0].id, backlog[0]);
}

#[test]
fn promote_moves_due_jobs_oldest_first_and_leaves_future_ones() {
    let (r, k) = (FakeRedis::new(), keys());
    for (score, id) in [
        ("300", "later"),
        ("100", "old"),
        ("250", "now"),
        ("251", "soon"),
    ] {
        r.cmd(&["ZADD", &k.scheduled, score, id]);
    }
    r.cmd(&["LPUSH", &k.active, "ready"]);
    assert_eq!(promote(&r, &k, 250), Ok(2));
    assert_eq!(list(&r, &k.active), ["ready", "old", "now"]);
    assert_eq!(
        r.cmd(&["ZRANGE", &k.scheduled, "0", "-1"]).strings(),
        ["soon", "later"]
    );
    // One wake-up token, however many were there.
    assert_eq!(list(&r, &k.signal), ["1"]);
    assert_eq!(promote(&r, &k, 250), Ok(0));
}

#[test]
fn promote_with_nothing_due_moves_nothing_and_wakes_no_worker() {
    let (r, k) = (FakeRedis::new(), keys());
    assert_eq!(promote(&r, &k, 250), Ok(0), "empty schedule");
    r.cmd(&["ZADD", &k.scheduled, "300", "later"]);
    assert_eq!(promote(&r, &k, 250), Ok(0), "only future jobs");
    assert!(!exists(&r, &k.active));
    assert!(!exists(&r, &k.signal));
    assert_eq!(r.cmd(&["ZCARD", &k.scheduled]).int(), 1);
}

#[test]
fn pushed_jobs_are_fetched_by_apalis_with_their_payload_and_fresh_metadata() {
    let (r, k) = (FakeRedis::new(), keys());
    assert_eq!(push(&r, &k, &[("a", "{\"n\":1}"), ("b", "{\"n\":2}")]), 2);
    assert_eq!(list(&r, &k.active), ["a", "b"]);
    assert_eq!(list(&r, &k.signal), ["1"]);
    assert!(!exists(&r, &k.scheduled), "pushes skip the schedule");
    register(&r, &k, "w1", 100);
    let fetched = apalis_fetch(&r, &k, "w1", 100).unwrap();
    let Fetched { id, payload, meta } = &fetched[0];
    assert_eq!((id.as_str(), payload.as_str()), ("a", "{\"n\":1}"));
    assert_eq!(meta["attempts"], "0");
    assert_eq!(meta["status"], "Pending");
    assert_eq!(meta["max_attempts"], MAX_ATTEMPTS.to_string());
    assert_eq!(members(&r, &format!("{}w1", k.inflight)), ["a"]);
    assert_eq!(list(&r, &k.active), ["b"]);
}

#[test]
fn a_push_of_an_id_already_stored_enqueues_nothing_and_keeps_the_first_payload() {
    let (r, k) = (FakeRedis::new(), keys());
    assert_eq!(push(&r, &k, &[("a", "first")]), 1);
    r.cmd(&["DEL", &k.signal]);
    assert_eq!(push(&r, &k, &[("a", "second")]), 0);
    assert_eq!(list(&r, &k.active), ["a"], "not enqueued twice");
    assert_eq!(
        r.cmd(&["HGET", &k.data, "a"]).bulk().as_deref(),
        Some("first")
    );
    assert!(!exists(&r, &k.signal), "no wake-up for nothing new");
}

#[test]
fn prune_deletes_the_data_and_metadata_of_finished_jobs_only() {
    let (r, k) = (FakeRedis::new(), keys());
    push(&r, &k, &[("done", "{}"), ("waiting", "{}")]);
    register(&r, &k, "w1", 100);
    let fetched = apalis_fetch(&r, &k, "w1", 100).unwrap();
    assert_eq!(fetched[0].id, "done");
    apalis_ack(&r, &k, "w1", "done", "Done", 1);
    assert_eq!(members(&r, &k.done), ["done"]);

    assert_eq!(prune(&r, &k, 100), 1);
    assert_eq!(
        r.cmd(&["GET", &k.completed]),
        Reply::Bulk("1".into()),
        "the pruned job is counted"
    );
    assert_eq!(r.cmd(&["HKEYS", &k.data]).strings(), ["waiting"]);
    assert!(!exists(&r, &format!("{}:done", k.meta)));
    assert!(!exists(&r, &k.done));
    assert_eq!(
        meta_field(&r, &k, "waiting", "status").as_deref(),
        Some("Pending")
    );
    assert_eq!(list(&r, &k.active), ["waiting"]);
    assert_eq!(prune(&r, &k, 100), 0, "nothing finished left");
}

#[test]
fn prune_removes_at_most_its_limit_and_exactly_the_jobs_it_took_from_the_done_set() {
    let (r, k) = (FakeRedis::new(), keys());
    let finished = ids("f", 5);
    for id in &finished {
        r.cmd(&["HSET", &k.data, id, "{}"]);
        r.cmd(&["HSET", &format!("{}:{id}", k.meta), "status", "Done"]);
        r.cmd(&["SADD", &k.done, id]);
    }
    assert_eq!(prune(&r, &k, 2), 2);
    let left = members(&r, &k.done);
    assert_eq!(left.len(), 3);
    for id in &finished {
        let still_done = left.contains(id);
        assert_eq!(
            r.cmd(&["HEXISTS", &k.data, id]).int() == 1,
            still_done,
            "{id}"
        );
        assert_eq!(exists(&r, &format!("{}:{id}", k.meta)), still_done, "{id}");
    }
}

#[test]
fn prune_workers_deletes_the_metadata_of_unregistered_workers_only() {
    let (r, k) = (FakeRedis::new(), keys());
    let prefix = format!("{}:metadata:", k.workers);
    register(&r, &k, "alive", 100);
    let (alive, gone) = (format!("{prefix}alive"), format!("{prefix}gone"));
    for key in [&alive, &gone] {
        r.cmd(&["HSET", key, "backend", "redis"]);
    }
    assert_eq!(
        r.eval(PRUNE_WORKERS, &[&alive, &gone], &[&k.workers, &prefix]),
        Ok(Reply::Int(1))
    );
    assert!(exists(&r, &alive));
    assert!(!exists(&r, &gone));
}

#[test]
fn depth_states_partition_every_job_and_pending_is_the_unfinished_ones() {
    let depth = QueueDepth {
        due: 1,
        future: 2,
        ready: 4,
        running: 8,
        dead: 16,
        done: 32,
        oldest_age_seconds: 0,
        oldest_ready_age_seconds: 0,
    };
    let states = depth.by_state();
    let total: u64 = states.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 63, "each count once");
    let mut names: Vec<_> = states.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), states.len(), "distinct labels");
    assert_eq!(depth.pending(), 1 + 2 + 4 + 8);
}
