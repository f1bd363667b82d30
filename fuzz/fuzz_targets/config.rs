//! The configuration readers, all from TOML text: `dnsseal.toml`
//! (`config::Config::parse_with`, the file system's answers handed in: no
//! file is looked at), a zone policy (`policy::Policy::parse`, then
//! what is derived from it, and its TOML written back, which must read as
//! the same policy: that is how the keystore stores it), and an HSM
//! profile (`config::Profile::parse`). Any input may be refused; none may
//! panic.
#![no_main]

use std::path::{Path, PathBuf};

use dnsseal::config::{builtin_profile_names, Config, ConfigError, Lookups, Profile};
use dnsseal::ksr::check::OfflinePolicy;
use dnsseal::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // No file is looked at: built-in profiles only, no module exists.
    let lookups = Lookups {
        base: PathBuf::from("/nonexistent/dnsseal-fuzz"),
        profile: &|name: &str| {
            if builtin_profile_names().contains(&name) {
                Profile::load(name)
            } else {
                Err(ConfigError::UnknownProfile(name.to_string()))
            }
        },
        exists: &|_: &Path| false,
    };
    let path = Path::new("/nonexistent/dnsseal-fuzz/dnsseal.toml");
    let _ = Config::parse_with(text, path, &lookups);
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
        let _ = profile.module_path_in(&|_: &Path| false);
    }
});
