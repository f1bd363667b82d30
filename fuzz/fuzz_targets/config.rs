//! The configuration readers, all from TOML text: `dnsseal.toml`
//! (`config::Config::parse`), a zone policy (`policy::Policy::parse`, then
//! what is derived from it, and its TOML written back, which must read as
//! the same policy: that is how the keystore stores it), and an HSM
//! profile (`config::Profile::parse`). Any input may be refused; none may
//! panic.
#![no_main]

use std::path::Path;

use dnsseal::config::{Config, Profile};
use dnsseal::ksr::check::OfflinePolicy;
use dnsseal::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A directory that does not exist: relative paths in the text lead
    // nowhere.
    let _ = Config::parse(text, Path::new("/nonexistent/dnsseal-fuzz/dnsseal.toml"));
    if let Ok(p) = Policy::parse(text) {
        let _ = p.algorithm();
        let _ = p.digests();
        let _ = p.bits(true);
        let _ = p.bits(false);
        let _ = p.summary();
        let _ = OfflinePolicy::from_policy(&p);
        let stored = p.to_toml();
        match Policy::parse(&stored) {
            Ok(again) => assert_eq!(again, p, "policy changed through its TOML:\n{stored}"),
            Err(e) => panic!("policy's own TOML refused: {e}\n{stored}"),
        }
    }
    if let Ok(profile) = Profile::parse(text, Path::new("fuzz-profile.toml")) {
        let _ = profile.module_path();
    }
});
