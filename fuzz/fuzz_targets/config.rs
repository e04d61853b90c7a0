//! Config files (KEY=VALUE or JSON) and the values they and the environment carry:
//! URLs, durations, log specs, ids, tokens.
#![no_main]

use ks_common::config::{parse_config_text, KSC_CONFIG};
use ks_common::{Config, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = ks_common::duration::parse_duration(text);
    let _ = ks_common::log_spec::LogSpec::parse(text);
    if let Ok(mut settings) = parse_config_text(text) {
        // A config file naming another would make the fuzzer read arbitrary paths.
        settings.remove(KSC_CONFIG);
        // As provider parameters (overrides) and as the environment.
        let _ = Config::resolve(&settings, &Settings::new());
        let _ = Config::resolve(&Settings::new(), &settings);
    }
});
