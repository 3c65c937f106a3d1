//! The stand-in's own Redis semantics that the queue tests rely on (as Redis documents them
//! and as Redis 7 answers).

use super::{FakeRedis, Reply};

#[test]
fn a_nil_reply_is_false_in_lua_and_an_integer_zero_is_truthy() {
    let r = FakeRedis::new();
    let script = "return { \
        redis.call('ZSCORE', KEYS[1], 'm') == false and 1 or 0, \
        redis.call('LPOS', KEYS[2], 'x') == false and 1 or 0, \
        redis.call('HEXISTS', KEYS[3], 'f') == 0 and 1 or 0, \
        redis.call('HEXISTS', KEYS[3], 'f') and 1 or 0 }";
    assert_eq!(
        r.eval(script, &["z", "l", "h"], &[]),
        Ok(Reply::Array(vec![Reply::Int(1); 4]))
    );
}

#[test]
fn a_script_reply_truncates_numbers_and_stops_a_table_at_its_first_nil() {
    let r = FakeRedis::new();
    assert_eq!(
        r.eval("return {1, 2.7, 'x', false, nil, 4}", &[], &[]),
        Ok(Reply::Array(vec![
            Reply::Int(1),
            Reply::Int(2),
            Reply::Bulk("x".into()),
            Reply::Nil,
        ]))
    );
}

#[test]
fn a_collection_emptied_by_a_command_no_longer_exists() {
    let r = FakeRedis::new();
    for (fill, empty) in [
        (&["SADD", "k", "a"][..], &["SREM", "k", "a"][..]),
        (&["SADD", "k", "a"], &["SPOP", "k", "5"]),
        (&["RPUSH", "k", "a"], &["LTRIM", "k", "1", "-1"]),
        (&["HSET", "k", "f", "v"], &["HDEL", "k", "f"]),
        (&["ZADD", "k", "1", "a"], &["ZREM", "k", "a"]),
    ] {
        r.cmd(fill);
        r.cmd(empty);
        assert_eq!(r.cmd(&["EXISTS", "k"]), Reply::Int(0), "{empty:?}");
    }
}

#[test]
fn a_command_on_a_key_of_another_type_fails_the_script_and_keeps_earlier_writes() {
    let r = FakeRedis::new();
    r.cmd(&["SADD", "set", "a"]);
    let err = r
        .eval(
            "redis.call('RPUSH', KEYS[1], 'x') redis.call('RPUSH', KEYS[2], 'x') return 1",
            &["list", "set"],
            &[],
        )
        .unwrap_err();
    assert!(err.contains("WRONGTYPE"), "{err}");
    assert_eq!(
        r.cmd(&["LLEN", "list"]),
        Reply::Int(1),
        "no rollback in Redis"
    );
}

#[test]
fn sorted_set_ranges_go_by_score_then_member() {
    let r = FakeRedis::new();
    r.cmd(&["ZADD", "z", "2", "b", "1", "c", "1", "a"]);
    assert_eq!(
        r.cmd(&["ZRANGE", "z", "0", "-1"]).strings(),
        ["a", "c", "b"]
    );
    assert_eq!(
        r.cmd(&["ZRANGE", "z", "0", "0", "WITHSCORES"]).strings(),
        ["a", "1"]
    );
    let by_score = |args: &[&str]| {
        let mut all = vec!["ZRANGEBYSCORE", "z"];
        all.extend(args);
        r.cmd(&all).strings()
    };
    assert_eq!(by_score(&["-inf", "1"]), ["a", "c"]);
    assert_eq!(by_score(&["-inf", "+inf", "LIMIT", "1", "1"]), ["c"]);
    assert_eq!(by_score(&["(1", "+inf"]), ["b"]);
    assert_eq!(by_score(&["-inf", "+inf", "LIMIT", "0", "-1"]).len(), 3);
}
