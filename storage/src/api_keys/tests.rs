use super::store::{hash, parse_scopes, same, token_id};
use super::*;

#[test]
fn scopes_parse_and_print_the_documented_names() {
    for scope in Scope::ALL {
        assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
    }
    assert!("links:read".parse::<Scope>().is_err());
    assert_eq!(
        parse_scopes("analytics:read,links:write"),
        vec![Scope::AnalyticsRead, Scope::LinksWrite]
    );
}

#[test]
fn admin_grants_every_scope_and_others_only_their_own() {
    let key = |scopes: Vec<Scope>| KeyInfo {
        id: "x".into(),
        name: None,
        scopes,
        created_at: chrono::NaiveDateTime::default(),
        revoked_at: None,
    };
    let admin = key(vec![Scope::Admin]);
    assert!(Scope::ALL.iter().all(|s| admin.grants(*s)));
    let writer = key(vec![Scope::LinksWrite]);
    assert!(writer.grants(Scope::LinksWrite));
    assert!(!writer.grants(Scope::AnalyticsRead));
    assert!(!writer.grants(Scope::Admin));
}

#[test]
fn only_well_formed_tokens_name_an_id() {
    let secret = "a".repeat(64);
    assert_eq!(
        token_id(&format!("ck_0123456789ab_{secret}")),
        Some("0123456789ab")
    );
    assert_eq!(token_id(&format!("ck_0123456789a_{secret}")), None);
    assert_eq!(token_id(&format!("xx_0123456789ab_{secret}")), None);
    assert_eq!(token_id("ck_0123456789ab_zz"), None);
    assert_eq!(token_id(""), None);
}

#[test]
fn the_stored_hash_is_sha256_hex_and_compares_exactly() {
    assert_eq!(
        hash("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert!(same(&hash("abc"), &hash("abc")));
    assert!(!same(&hash("abc"), &hash("abd")));
    assert!(!same("ab", "abc"));
}
