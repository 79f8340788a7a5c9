//! Links the WinFsp DLL with delay-loading when building for Windows (WinFsp supports no other
//! linkage); nothing to do for other targets, where only the platform-neutral modules build.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        winfsp::build::winfsp_link_delayload();
    }
}
