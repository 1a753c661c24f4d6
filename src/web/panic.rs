//! One panic hook for the whole module: a bug reaches the console as a readable message
//! instead of an opaque `RuntimeError: unreachable`.

use std::sync::Once;

static HOOK: Once = Once::new();

/// Installs the hook; idempotent.
pub(crate) fn install() {
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            web_sys::console::error_1(&format!("edge-anomaly panicked: {info}").into());
        }));
    });
}
