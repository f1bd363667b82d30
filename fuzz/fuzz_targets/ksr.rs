//! The offline-KSK exchange readers (`ksr::parse_request_text`,
//! `ksr::parse_response_text`, and `ksr::format::dnskeys_in` for a file of pinned
//! KSKs) on the input as text for example.com; what they read is written
//! back, and checked as the offline box and the online box check it.
//! Any input may be refused; none may panic.
#![no_main]

use dnsseal::clock::Timestamp;
use dnsseal::ksr::{self, check::OfflinePolicy, respond};
use dnsseal::policy::Policy;
use dnsseal::zone::ZoneName;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let zone: ZoneName = "example.com".parse().unwrap();
    let now = Timestamp::from_unix(1_796_356_535);
    let request = ksr::parse_request_text(text, "fuzz.ksr", &zone).ok();
    if let Some(request) = &request {
        let _ = ksr::write_request(request, now);
        let policy = OfflinePolicy::from_policy(&Policy::default()).unwrap();
        let _ = ksr::check_request(request, &policy, now);
        let _ = respond::period_times(request, 14 * 86_400, 5 * 86_400);
    }
    if let Ok(response) = ksr::parse_response_text(text, "fuzz.skr", &zone) {
        let _ = ksr::write_response(&response, now);
        let _ = respond::response_end(&response);
        let _ = respond::period_at(&response, now);
        if let Some(request) = &request {
            let pins = ksr::format::dnskeys_in(text, "fuzz.keys", &zone).unwrap_or_default();
            let _ = ksr::check_response(&response, request, &pins);
        }
        let _ = respond::merge(Some(response.clone()), response);
    }
});
