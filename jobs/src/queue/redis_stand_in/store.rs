//! The stand-in's keyspace and commands (see `redis_stand_in.rs`): only those the scripts use,
//! with Redis' semantics for them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::Reply;

enum Value {
    List(VecDeque<String>),
    Hash(BTreeMap<String, String>),
    Set(BTreeSet<String>),
    /// member -> score
    ZSet(BTreeMap<String, f64>),
    /// A string (the completed-jobs counter).
    Str(String),
}

impl Value {
    fn is_empty(&self) -> bool {
        match self {
            Self::List(l) => l.is_empty(),
            Self::Hash(h) => h.is_empty(),
            Self::Set(s) => s.is_empty(),
            Self::ZSet(z) => z.is_empty(),
            Self::Str(_) => false,
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
pub(super) fn format_score(s: f64) -> String {
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
            "GET" => match self.keys.get(key) {
                None => Ok(Reply::Nil),
                Some(Value::Str(s)) => Ok(Reply::Bulk(s.clone())),
                Some(_) => Err(WRONGTYPE.to_owned()),
            },
            "INCRBY" => {
                let by: i64 = rest
                    .first()
                    .and_then(|v| v.parse().ok())
                    .ok_or("ERR value is not an integer or out of range")?;
                let now = match self.keys.get(key) {
                    None => 0,
                    Some(Value::Str(s)) => s
                        .parse::<i64>()
                        .map_err(|_| "ERR value is not an integer or out of range")?,
                    Some(_) => return Err(WRONGTYPE.to_owned()),
                };
                let next = now + by;
                self.keys.insert(key.clone(), Value::Str(next.to_string()));
                Ok(Reply::Int(next))
            }
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
                    Some(Value::Str(_)) => "string",
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
