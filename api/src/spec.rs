//! The served OpenAPI document: poem-openapi's, made as precise as the handlers. Query
//! parameters are declared `string` in the code (the handlers parse them to answer the
//! contract's exact 400 messages), so their real types are stated here, as are the value rules
//! of the JSON bodies that a JSON Schema can express. Generated clients and schemathesis then
//! send what the API accepts. Also the methods each path allows, for `Allow` on 405s.

use std::collections::BTreeSet;

use serde_json::{Value, json};

/// Only creates can meet a taken code, and a health check a link whose checks are off: the
/// shared error type's 409 is dropped from every other operation.
fn drop_conflicts(spec: &mut Value) {
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, ops) in paths.iter_mut() {
            let Some(ops) = ops.as_object_mut() else {
                continue;
            };
            for (method, op) in ops.iter_mut() {
                let creates = method == "post"
                    && matches!(
                        path.as_str(),
                        "/urls" | "/shorten-ui" | "/urls/{id}/health/check"
                    );
                if !creates && let Some(responses) = op["responses"].as_object_mut() {
                    responses.remove("409");
                }
            }
        }
    }
}

/// Query parameters by name: the schema each one really has.
fn query_schema(path: &str, name: &str) -> Option<Value> {
    Some(match (path, name) {
        // Any integer: one too large for an id matches nothing (`[]`), not a 400; a page past
        // the end is empty. (`GET /urls`' `limit` stays a string: anything but an integer
        // means the default.)
        (_, "url_id" | "user_id") => json!({"type": "integer"}),
        (_, "page" | "per_page") => json!({"type": "integer", "minimum": 1}),
        ("/urls", "is_active") => json!({"type": "boolean"}),
        (_, "granularity") => json!({"type": "string", "enum": ["hour", "day"]}),
        (_, "from" | "to") => json!({"type": "string", "format": "date-time"}),
        ("/debug/slow", "seconds") => json!({"type": "number", "minimum": 0, "maximum": 60}),
        (_, "expand") => json!({"type": "string", "enum": ["details"]}),
        ("/urls", "tag_mode") => json!({"type": "string", "enum": ["any", "all"]}),
        _ => return None,
    })
}

/// A string the handlers accept: non-blank after trimming, no NUL, at most `max` characters.
fn text(max: u64) -> Value {
    json!({"minLength": 1, "maxLength": max, "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"})
}

fn merge(target: &mut Value, extra: Value) {
    if let (Some(target), Value::Object(extra)) = (target.as_object_mut(), extra) {
        target.extend(extra);
    }
}

/// poem-openapi's spec, refined (see the module docs).
#[must_use]
pub fn refine(spec: &str) -> Value {
    let mut spec: Value = serde_json::from_str(spec).unwrap_or_default();
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, ops) in paths.iter_mut() {
            let Some(ops) = ops.as_object_mut() else {
                continue;
            };
            for op in ops.values_mut() {
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                for param in params {
                    let name = param["name"].as_str().unwrap_or_default().to_owned();
                    if param["in"] == "query"
                        && let Some(schema) = query_schema(path, &name)
                    {
                        param["schema"] = schema;
                    }
                }
            }
        }
    }
    drop_conflicts(&mut spec);
    // The form's validation errors are the htmx fragment, not the JSON envelope (poem-openapi
    // lets the shared error type's 400 and 409 replace the fragment's).
    for (status, what) in [
        ("400", "Invalid input"),
        ("409", "The custom alias is taken"),
    ] {
        if let Some(bad) = spec.pointer_mut(&format!("/paths/~1shorten-ui/post/responses/{status}"))
        {
            let json_error = bad["content"].clone();
            *bad = json!({
                "description": format!("{what}: the error fragment (the same message as the JSON \
                                API); a body that is not a form at all gets the JSON envelope."),
                "content": json_error,
            });
            bad["content"]["text/html; charset=utf-8"] = json!({"schema": {"type": "string"}});
        }
    }
    // Optional fields are written as `null` when absent (the contract shows them): OpenAPI 3.0
    // needs `nullable` for that, which poem-openapi leaves out.
    if let Some(schemas) = spec
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        for schema in schemas.values_mut() {
            let required: BTreeSet<String> = schema["required"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
                continue;
            };
            for (name, prop) in props.iter_mut() {
                if required.contains(name) {
                    continue;
                }
                if let Some(reference) = prop.get("$ref").cloned() {
                    *prop = json!({"allOf": [{"$ref": reference}], "nullable": true});
                } else {
                    prop["nullable"] = json!(true);
                }
            }
        }
    }
    let schemas = &mut spec["components"]["schemas"];
    merge(
        &mut schemas["EventInput"]["properties"]["event_type"],
        text(64),
    );
    merge(
        &mut schemas["EventInput"]["properties"]["details"],
        json!({"type": "object"}),
    );
    merge(
        &mut schemas["UserInput"]["properties"]["username"],
        text(120),
    );
    merge(
        &mut schemas["UserInput"]["properties"]["email"],
        json!({"maxLength": 255, "pattern": "^[^\\s\\u0000@]+@[^\\s\\u0000@]+\\.[^\\s\\u0000@]+$"}),
    );
    merge(
        &mut schemas["UrlInput"]["properties"]["custom_code"],
        json!({"pattern": "^[A-Za-z0-9_-]{3,16}$"}),
    );
    crate::keys::document(&mut spec);
    spec
}

/// The methods each path template of `spec` allows (HEAD wherever GET is).
#[derive(Debug, Default)]
pub struct AllowedMethods(Vec<(Vec<Option<String>>, String)>);

impl AllowedMethods {
    #[must_use]
    pub fn from_spec(spec: &Value) -> Self {
        let mut out = Vec::new();
        if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, ops) in paths {
                let mut methods: BTreeSet<String> = ops
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_uppercase()).collect())
                    .unwrap_or_default();
                if methods.contains("GET") {
                    methods.insert("HEAD".to_owned());
                }
                let segments = path
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                out.push((segments, methods.into_iter().collect::<Vec<_>>().join(", ")));
            }
        }
        Self(out)
    }

    /// The `Allow` value for a request path: of the templates it matches, the one with the most
    /// literal segments (the router prefers literals too).
    #[must_use]
    pub fn for_path(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(s, p)| s.as_deref().is_none_or(|lit| lit == *p))
            })
            .max_by_key(|(segments, _)| segments.iter().filter(|s| s.is_some()).count())
            .map(|(_, methods)| methods.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_the_methods_of_the_most_literal_template() {
        let spec = json!({"paths": {
            "/users/{id}": {"get": {}, "put": {}, "delete": {}},
            "/users/bulk": {"post": {}},
            "/": {"get": {}},
        }});
        let allowed = AllowedMethods::from_spec(&spec);
        assert_eq!(allowed.for_path("/users/7"), Some("DELETE, GET, HEAD, PUT"));
        assert_eq!(allowed.for_path("/users/bulk"), Some("POST"));
        assert_eq!(allowed.for_path("/"), Some("GET, HEAD"));
        assert_eq!(allowed.for_path("/nope/x/y"), None);
    }

    #[test]
    fn query_parameters_get_their_real_types() {
        let spec = json!({"paths": {"/events": {"get": {"parameters": [
            {"name": "url_id", "in": "query", "schema": {"type": "string"}},
            {"name": "event_type", "in": "query", "schema": {"type": "string"}},
        ]}}}, "components": {"schemas": {}}});
        let refined = refine(&spec.to_string());
        let params = &refined["paths"]["/events"]["get"]["parameters"];
        assert_eq!(params[0]["schema"]["type"], "integer");
        assert_eq!(params[1]["schema"]["type"], "string");
    }
}
