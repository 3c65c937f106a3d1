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
use std::rc::Rc;

use mlua::{Lua, MultiValue, Value as LuaValue};

use store::{Store, format_score};

mod store;

#[cfg(test)]
mod tests;

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
