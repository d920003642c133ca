//! The opt-out of the tests that need a Docker engine or a registry: with
//! `TOOLBOX_SKIP_SERVICE_TESTS=1` they are built as ignored (`cfg(toolbox_skip_service_tests)`),
//! so that cargo's summary counts them as ignored, never as passed.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TOOLBOX_SKIP_SERVICE_TESTS");
    println!("cargo::rustc-check-cfg=cfg(toolbox_skip_service_tests)");
    if std::env::var("TOOLBOX_SKIP_SERVICE_TESTS").is_ok_and(|v| v == "1") {
        println!("cargo:rustc-cfg=toolbox_skip_service_tests");
    }
}
