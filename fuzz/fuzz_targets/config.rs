//! Any text as the node's TOML config file, merged and validated.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = toml::from_str::<powchain::config::FileConfig>(text) {
        let _ = powchain::config::NodeConfig::merge(f, powchain::config::Overrides::default());
    }
});
