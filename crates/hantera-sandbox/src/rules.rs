//! The rules a merchant's Hantera runs on the gateway's behalf, emulated: what the
//! bridge app of `docs/hantera-bridge.md` installs besides its hook forwarding.

use serde::{Deserialize, Serialize};

/// The error code the completion guard raises. It is the bridge app's own
/// `validationError` code, so a person reading Hantera's log knows where it came from.
pub(crate) const PAYMENTS_DO_NOT_COVER_TOTAL: &str = "PAYMENTS_DO_NOT_COVER_TOTAL";

/// Which of the bridge app's rules are installed. `Default` is a Hantera without the
/// bridge app; [`Rules::bridge_app`] is one with it, as the gateway's embedded default and
/// `psp-gateway sandbox` run. A reset goes back to the rules the sandbox started with;
/// `PUT /sandbox/rules` changes them while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Rules {
    /// `OnTicketComplete`: a cart is completed only when the successful authorizations of
    /// the payments related to it cover its `orderTotal`. It closes the window in which a
    /// cart grows between the gateway's last read and `complete`: the batch that links the
    /// payment and completes the cart is refused as a whole.
    pub payments_cover_total: bool,
}

impl Rules {
    /// Every rule the bridge app installs.
    pub fn bridge_app() -> Self {
        Self {
            payments_cover_total: true,
        }
    }
}
