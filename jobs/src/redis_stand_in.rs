//! A small in-memory Redis that runs the queue's real Lua scripts in unit tests, with no Redis
//! server: the scripts run in Lua 5.1 (the interpreter Redis embeds, with its `unpack()` limit
//! of about 8,000 values) and `redis.call` reaches [`Store`], which implements only the
//! commands the scripts (ours and the two apalis-redis scripts in `testdata/`) use, with Redis'
//! semantics for them: type errors, collections that vanish when emptied, sorted sets ordered
//! by score then member, replies converted to and from Lua as Redis converts them (a nil bulk
//! is `false`, an integer a number, an array a table). Like Redis, a script that fails keeps
//! the writes it made before the error. Not here: expiry, pub/sub, `redis.pcall`, anything
//! else; and a `redis.call` with more than about 7,900 arguments fails here (mlua's stack)
//! where Redis takes it: the scripts pass at most 1,000, and a test can only fail on it, never
//! pass wrongly.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use mlua::{Lua, MultiValue, Value as LuaValue};

/// A reply, as a Redis client sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    Nil,
    Int(i64),
    Bulk(String),
    Array(Vec<Reply>),
    Status(String),
}

impl Reply {
    /// The integer of an integer reply (panics otherwise: a test setup error).
    pub(crate) fn int(&self) -> i64 {
        match self {
            Self::Int(n) => *n,
            other => panic!("not an integer reply: {other:?}"),
        }
    }

    /// The strings of an array reply of bulk strings.
    pub(crate) fn strings(&self) -> Vec<String> {
        match self {
            Self::Array(items) => items
                .iter()
                .map(|item| match item {
                    Self::Bulk(s) => s.clone(),
                    other => panic!("not a bulk string: {other:?}"),
                })
                .collect(),
            other => panic!("not an array reply: {other:?}"),
        }
    }

    pub(crate) fn bulk(&self) -> Option<String> {
        match self {
            Self::Bulk(s) => Some(s.clone()),
            Self::Nil => None,
            other => panic!("not a bulk reply: {other:?}"),
        }
    }
}

enum Value {
    List(VecDeque<String>),
    Hash(BTreeMap<String, String>),
    Set(BTreeSet<String>),
    /// member -> score
    ZSet(BTreeMap<String, f64>),
}

impl Value {
    fn is_empty(&self) -> bool {
        match self {
            Self::List(l) => l.is_empty(),
            Self::Hash(h) => h.is_empty(),
            Self::Set(s) => s.is_empty(),
            Self::ZSet(z) => z.is_empty(),
        }
    }
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn arity(cmd: &str) -> String {
    format!(
        "ERR wrong number of arguments for '{}' command",
        cmd.to_lowercase()
    )
}

fn int(s: &str) -> Result<i64, String> {
    s.parse()
        .map_err(|_| "ERR value is not an integer or out of range".to_owned())
}

fn score(s: &str) -> Result<f64, String> {
    match s {
        "+inf" | "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| "ERR value is not a valid float".to_owned()),
    }
}

/// A `ZRANGEBYSCORE` bound: its value and whether it is exclusive (`(x`).
fn bound(s: &str) -> Result<(f64, bool), String> {
    match s.strip_prefix('(') {
        Some(rest) => Ok((score(rest)?, true)),
        None => Ok((score(s)?, false)),
    }
}

/// Redis' `%.17g` of a score, which gives `250` for 250.0.
fn format_score(s: f64) -> String {
    format!("{s}")
}

/// Start and stop indices (negative from the end) as a range within `len`, `None` if empty.
fn index_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).ok()?;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

fn bulk_array(items: impl IntoIterator<Item = String>) -> Reply {
    Reply::Array(items.into_iter().map(Reply::Bulk).collect())
}

fn count(n: usize) -> Reply {
    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The keyspace and the commands on it.
#[derive(Default)]
pub(crate) struct Store {
    keys: BTreeMap<String, Value>,
}

macro_rules! typed {
    ($self:ident, $key:expr, $variant:ident) => {
        match $self.keys.get($key) {
            None => None,
            Some(Value::$variant(v)) => Some(v),
            Some(_) => return Err(WRONGTYPE.to_owned()),
        }
    };
}

macro_rules! typed_mut {
    ($self:ident, $key:expr, $variant:ident) => {
        match $self
            .keys
            .entry($key.clone())
            .or_insert_with(|| Value::$variant(Default::default()))
        {
            Value::$variant(v) => v,
            _ => return Err(WRONGTYPE.to_owned()),
        }
    };
}

impl Store {
    /// Runs one command; `Err` is the error reply.
    pub(crate) fn call(&mut self, args: &[String]) -> Result<Reply, String> {
        let Some((cmd, rest)) = args.split_first() else {
            return Err("ERR empty command".to_owned());
        };
        let cmd = cmd.to_ascii_uppercase();
        let reply = self.dispatch(&cmd, rest);
        // Redis deletes a collection when its last element goes.
        if let Some(key) = rest.first()
            && self.keys.get(key).is_some_and(Value::is_empty)
        {
            self.keys.remove(key);
        }
        reply
    }

    #[expect(
        clippy::too_many_lines,
        reason = "one arm per command reads best as one table"
    )]
    fn dispatch(&mut self, cmd: &str, a: &[String]) -> Result<Reply, String> {
        let Some((key, rest)) = a.split_first() else {
            return Err(arity(cmd));
        };
        match cmd {
            "DEL" | "EXISTS" => {
                let n = a
                    .iter()
                    .filter(|k| {
                        if cmd == "DEL" {
                            self.keys.remove(*k).is_some()
                        } else {
                            self.keys.contains_key(*k)
                        }
                    })
                    .count();
                Ok(count(n))
            }
            "TYPE" => Ok(Reply::Status(
                match self.keys.get(key) {
                    None => "none",
                    Some(Value::List(_)) => "list",
                    Some(Value::Hash(_)) => "hash",
                    Some(Value::Set(_)) => "set",
                    Some(Value::ZSet(_)) => "zset",
                }
                .to_owned(),
            )),
            "RPUSH" | "LPUSH" => {
                if rest.is_empty() {
                    return Err(arity(cmd));
                }
                let list = typed_mut!(self, key, List);
                for v in rest {
                    if cmd == "RPUSH" {
                        list.push_back(v.clone());
                    } else {
                        list.push_front(v.clone());
                    }
                }
                Ok(count(list.len()))
            }
            "LLEN" => Ok(count(typed!(self, key, List).map_or(0, VecDeque::len))),
            "LRANGE" | "LTRIM" => {
                let [start, stop] = rest else {
                    return Err(arity(cmd));
                };
                let (start, stop) = (int(start)?, int(stop)?);
                if cmd == "LRANGE" {
                    let list = typed!(self, key, List);
                    let items = list
                        .and_then(|l| index_range(start, stop, l.len()).map(|r| (l, r)))
                        .map(|(l, (s, e))| l.range(s..=e).cloned().collect::<Vec<_>>())
                        .unwrap_or_default();
                    return Ok(bulk_array(items));
                }
                if let Some(list) = typed!(self, key, List) {
                    let kept: VecDeque<String> = index_range(start, stop, list.len())
                        .map(|(s, e)| list.range(s..=e).cloned().collect())
                        .unwrap_or_default();
                    self.keys.insert(key.clone(), Value::List(kept));
                }
                Ok(Reply::Status("OK".to_owned()))
            }
            "LPOS" => {
                let [value] = rest else {
                    return Err(arity(cmd));
                };
                Ok(typed!(self, key, List)
                    .and_then(|l| l.iter().position(|v| v == value))
                    .map_or(Reply::Nil, count))
            }
            "HSET" | "HMSET" => {
                if rest.is_empty() || rest.len() % 2 != 0 {
                    return Err(arity(cmd));
                }
                let hash = typed_mut!(self, key, Hash);
                let added = rest
                    .chunks(2)
                    .filter(|pair| hash.insert(pair[0].clone(), pair[1].clone()).is_none())
                    .count();
                if cmd == "HMSET" {
                    return Ok(Reply::Status("OK".to_owned()));
                }
                Ok(count(added))
            }
            "HSETNX" => {
                let [field, value] = rest else {
                    return Err(arity(cmd));
                };
                let hash = typed_mut!(self, key, Hash);
                if hash.contains_key(field) {
                    return Ok(Reply::Int(0));
                }
                hash.insert(field.clone(), value.clone());
                Ok(Reply::Int(1))
            }
            "HGET" | "HEXISTS" => {
                let [field] = rest else {
                    return Err(arity(cmd));
                };
                let value = typed!(self, key, Hash).and_then(|h| h.get(field));
                if cmd == "HEXISTS" {
                    return Ok(Reply::Int(i64::from(value.is_some())));
                }
                Ok(value.map_or(Reply::Nil, |v| Reply::Bulk(v.clone())))
            }
            "HMGET" => {
                let hash = typed!(self, key, Hash);
                Ok(Reply::Array(
                    rest.iter()
                        .map(|f| {
                            hash.and_then(|h| h.get(f))
                                .map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
                        })
                        .collect(),
                ))
            }
            "HDEL" => {
                if typed!(self, key, Hash).is_none() {
                    return Ok(Reply::Int(0));
                }
                let hash = typed_mut!(self, key, Hash);
                Ok(count(
                    rest.iter().filter(|f| hash.remove(*f).is_some()).count(),
                ))
            }
            "HGETALL" | "HKEYS" | "HLEN" => {
                let hash = typed!(self, key, Hash);
                let pairs = hash.into_iter().flatten();
                Ok(match cmd {
                    "HLEN" => count(hash.map_or(0, BTreeMap::len)),
                    "HKEYS" => bulk_array(pairs.map(|(k, _)| k.clone())),
                    _ => bulk_array(pairs.flat_map(|(k, v)| [k.clone(), v.clone()])),
                })
            }
            "SADD" => {
                if rest.is_empty() {
                    return Err(arity(cmd));
                }
                let set = typed_mut!(self, key, Set);
                Ok(count(
                    rest.iter().filter(|m| set.insert((*m).clone())).count(),
                ))
            }
            "SREM" => {
                if typed!(self, key, Set).is_none() {
                    return Ok(Reply::Int(0));
                }
                let set = typed_mut!(self, key, Set);
                Ok(count(rest.iter().filter(|m| set.remove(*m)).count()))
            }
            "SISMEMBER" => {
                let [member] = rest else {
                    return Err(arity(cmd));
                };
                Ok(Reply::Int(i64::from(
                    typed!(self, key, Set).is_some_and(|s| s.contains(member)),
                )))
            }
            "SMEMBERS" => Ok(bulk_array(
                typed!(self, key, Set).into_iter().flatten().cloned(),
            )),
            "SCARD" => Ok(count(typed!(self, key, Set).map_or(0, BTreeSet::len))),
            "SPOP" => {
                // Redis pops random members; this pops the smallest, which no caller may rely on.
                let n = match rest {
                    [] => None,
                    [n] => Some(
                        usize::try_from(int(n)?)
                            .map_err(|_| "ERR value is out of range, must be positive")?,
                    ),
                    _ => return Err(arity(cmd)),
                };
                let Some(set) = typed!(self, key, Set) else {
                    return Ok(n.map_or(Reply::Nil, |_| Reply::Array(Vec::new())));
                };
                let popped: Vec<String> = set.iter().take(n.unwrap_or(1)).cloned().collect();
                let set = typed_mut!(self, key, Set);
                for m in &popped {
                    set.remove(m);
                }
                Ok(match n {
                    Some(_) => bulk_array(popped),
                    None => popped.into_iter().next().map_or(Reply::Nil, Reply::Bulk),
                })
            }
            "ZADD" => {
                if rest.is_empty() || rest.len() % 2 != 0 {
                    return Err(arity(cmd));
                }
                let scores = rest
                    .chunks(2)
                    .map(|p| Ok((score(&p[0])?, p[1].clone())))
                    .collect::<Result<Vec<_>, String>>()?;
                let zset = typed_mut!(self, key, ZSet);
                Ok(count(
                    scores
                        .into_iter()
                        .filter(|(s, m)| zset.insert(m.clone(), *s).is_none())
                        .count(),
                ))
            }
            "ZREM" => {
                if typed!(self, key, ZSet).is_none() {
                    return Ok(Reply::Int(0));
                }
                let zset = typed_mut!(self, key, ZSet);
                Ok(count(
                    rest.iter().filter(|m| zset.remove(*m).is_some()).count(),
                ))
            }
            "ZSCORE" => {
                let [member] = rest else {
                    return Err(arity(cmd));
                };
                Ok(typed!(self, key, ZSet)
                    .and_then(|z| z.get(member))
                    .map_or(Reply::Nil, |s| Reply::Bulk(format_score(*s))))
            }
            "ZCARD" => Ok(count(typed!(self, key, ZSet).map_or(0, BTreeMap::len))),
            "ZRANGE" | "ZRANGEBYSCORE" => {
                let sorted = self.sorted(key)?;
                let (items, options): (Vec<(String, f64)>, &[String]) = if cmd == "ZRANGE" {
                    let [start, stop, options @ ..] = rest else {
                        return Err(arity(cmd));
                    };
                    let items = index_range(int(start)?, int(stop)?, sorted.len())
                        .map(|(s, e)| sorted[s..=e].to_vec())
                        .unwrap_or_default();
                    (items, options)
                } else {
                    let [min, max, options @ ..] = rest else {
                        return Err(arity(cmd));
                    };
                    let ((min, min_open), (max, max_open)) = (bound(min)?, bound(max)?);
                    let within = |s: f64| {
                        (if min_open { s > min } else { s >= min })
                            && (if max_open { s < max } else { s <= max })
                    };
                    let mut items: Vec<_> =
                        sorted.into_iter().filter(|(_, s)| within(*s)).collect();
                    if let Some(i) = options.iter().position(|o| o.eq_ignore_ascii_case("LIMIT")) {
                        let [offset, limit] = options.get(i + 1..i + 3).unwrap_or_default() else {
                            return Err("ERR syntax error".to_owned());
                        };
                        let offset = usize::try_from(int(offset)?).unwrap_or(0);
                        // A negative count means every element from the offset on.
                        let limit = usize::try_from(int(limit)?).unwrap_or(usize::MAX);
                        items = items.into_iter().skip(offset).take(limit).collect();
                    }
                    (items, options)
                };
                let with_scores = options.iter().any(|o| o.eq_ignore_ascii_case("WITHSCORES"));
                Ok(bulk_array(items.into_iter().flat_map(|(m, s)| {
                    let score = with_scores.then(|| format_score(s));
                    std::iter::once(m).chain(score)
                })))
            }
            _ => Err(format!("ERR unknown command '{cmd}' (not in the stand-in)")),
        }
    }

    /// A sorted set's members by score, then member (Redis' order).
    fn sorted(&self, key: &str) -> Result<Vec<(String, f64)>, String> {
        let mut items: Vec<(String, f64)> = typed!(self, key, ZSet)
            .into_iter()
            .flatten()
            .map(|(m, s)| (m.clone(), *s))
            .collect();
        items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        Ok(items)
    }
}

/// A Lua value passed to `redis.call` as Redis takes it: strings as they are, numbers as
/// Redis prints them (`%.17g`: 25 is "25"), anything else an error.
fn arg_to_string(v: &LuaValue) -> mlua::Result<String> {
    match v {
        LuaValue::String(s) => Ok(s.to_str()?.to_owned()),
        LuaValue::Integer(n) => Ok(n.to_string()),
        LuaValue::Number(n) => Ok(format_score(*n)),
        _ => Err(mlua::Error::RuntimeError(
            "Lua redis() command arguments must be strings or integers".to_owned(),
        )),
    }
}

/// A reply as Redis hands it to Lua.
fn to_lua(lua: &Lua, reply: &Reply) -> mlua::Result<LuaValue> {
    Ok(match reply {
        Reply::Nil => LuaValue::Boolean(false),
        Reply::Int(n) => LuaValue::Integer(*n),
        Reply::Bulk(s) => LuaValue::String(lua.create_string(s)?),
        Reply::Array(items) => {
            let table = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                table.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            LuaValue::Table(table)
        }
        Reply::Status(s) => {
            let table = lua.create_table()?;
            table.raw_set("ok", s.as_str())?;
            LuaValue::Table(table)
        }
    })
}

/// A script's return value as Redis replies it: numbers truncated to integers, a table as an
/// array up to its first nil, `false` as nil, `true` as 1.
fn from_lua(v: &LuaValue) -> Result<Reply, String> {
    Ok(match v {
        LuaValue::Nil | LuaValue::Boolean(false) => Reply::Nil,
        LuaValue::Boolean(true) => Reply::Int(1),
        LuaValue::Integer(n) => Reply::Int(*n),
        // Redis truncates a Lua number to an integer reply.
        LuaValue::Number(n) => Reply::Int(*n as i64),
        LuaValue::String(s) => Reply::Bulk(s.to_str().map_err(|e| e.to_string())?.to_owned()),
        LuaValue::Table(t) => {
            if let Ok(LuaValue::String(err)) = t.raw_get::<LuaValue>("err") {
                return Err(err.to_str().map_err(|e| e.to_string())?.to_owned());
            }
            let mut items = Vec::new();
            for i in 1.. {
                let item: LuaValue = t.raw_get(i).map_err(|e| e.to_string())?;
                if item.is_nil() {
                    break;
                }
                items.push(from_lua(&item)?);
            }
            Reply::Array(items)
        }
        other => return Err(format!("script returned {}", other.type_name())),
    })
}

/// Lua 5.1 with `redis.call` wired to a [`Store`].
pub(crate) struct FakeRedis {
    lua: Lua,
    store: Rc<RefCell<Store>>,
}

impl FakeRedis {
    pub(crate) fn new() -> Self {
        let lua = Lua::new();
        let store = Rc::new(RefCell::new(Store::default()));
        let inner = store.clone();
        let call = lua
            .create_function(move |lua, args: MultiValue| {
                let args = args
                    .iter()
                    .map(arg_to_string)
                    .collect::<mlua::Result<Vec<_>>>()?;
                let reply = inner
                    .borrow_mut()
                    .call(&args)
                    .map_err(mlua::Error::RuntimeError)?;
                to_lua(lua, &reply)
            })
            .expect("redis.call");
        let redis = lua.create_table().expect("redis table");
        redis.set("call", call).expect("redis.call");
        lua.globals().set("redis", redis).expect("redis global");
        Self { lua, store }
    }

    /// `EVAL script` with these keys and arguments; `Err` is the script's error.
    pub(crate) fn eval(&self, script: &str, keys: &[&str], args: &[&str]) -> Result<Reply, String> {
        let globals = self.lua.globals();
        let table = |items: &[&str]| self.lua.create_sequence_from(items.iter().copied());
        globals
            .set("KEYS", table(keys).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        globals
            .set("ARGV", table(args).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let value: LuaValue = self.lua.load(script).eval().map_err(|e| e.to_string())?;
        from_lua(&value)
    }

    /// One command from the test itself (set-up and inspection); panics on an error reply.
    pub(crate) fn cmd(&self, args: &[&str]) -> Reply {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        self.store
            .borrow_mut()
            .call(&args)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }
}

/// The stand-in's own Redis semantics that the queue tests rely on (as Redis documents them).
mod tests {
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
}
