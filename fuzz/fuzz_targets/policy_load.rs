//! Policy loading (TOML, the model, compilation and lints) on arbitrary text: errors are
//! fine, panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(policy) = entra_governor::Policy::from_toml_str(text)
    {
        let _ = policy.lint();
    }
});
