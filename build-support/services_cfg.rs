//! Marks the integration tests that need real services: with `CURTAIN_TEST_DATABASE_URL` and
//! `CURTAIN_TEST_REDIS_URL` set at build time the PostgreSQL + Redis variants run; without them
//! they show as ignored, with the reason, instead of passing silently.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(curtain_services)");
    println!("cargo::rerun-if-env-changed=CURTAIN_TEST_DATABASE_URL");
    println!("cargo::rerun-if-env-changed=CURTAIN_TEST_REDIS_URL");
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    if set("CURTAIN_TEST_DATABASE_URL") && set("CURTAIN_TEST_REDIS_URL") {
        println!("cargo::rustc-cfg=curtain_services");
    }
}
