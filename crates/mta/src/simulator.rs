//! The mailbox simulator: recipients at `simulator.herald.test` never leave
//! the machine. Each address plays one outcome through the real queue, so
//! an integration sees the real events:
//!
//! | address | outcome |
//! |---|---|
//! | `success@` | delivered |
//! | `bounce@` | hard bounce, `550 5.1.1` (userunknown) |
//! | `softbounce@` | deferred (`452 4.2.2` mailbox full) twice, then delivered |
//! | `complaint@` | delivered, then a complaint (the address is suppressed for the brand) |
//! | `ooto@` | delivered, then an out-of-office auto-reply (`replied`, reason `auto_reply`) |
//! | `suppressed@` | dropped at acceptance, as a suppressed address is |
//!
//! Any other address there bounces as an unknown user would.

use herald_types::SmtpAnswer;

/// The simulator's domain.
pub const SIMULATOR_DOMAIN: &str = "simulator.herald.test";
/// Deferrals of `softbounce@` before it is delivered.
pub const SOFT_DEFERRALS: u32 = 2;
/// How soon a simulated deferral is retried, in milliseconds.
pub const SOFT_RETRY_MS: i64 = 1000;

/// What happens after a simulated delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Nothing,
    Complaint,
    AutoReply,
}

/// Whether a recipient domain is the simulator's.
pub fn is_simulated(domain: &str) -> bool {
    domain.eq_ignore_ascii_case(SIMULATOR_DOMAIN)
}

/// Whether the simulator drops this recipient at acceptance.
pub fn is_suppressed(local: &str, domain: &str) -> bool {
    is_simulated(domain) && local.eq_ignore_ascii_case("suppressed")
}

fn answer(code: u16, enhanced: &str, text: &str) -> SmtpAnswer {
    SmtpAnswer {
        code,
        enhanced: Some(enhanced.to_owned()),
        text: format!("{text} (Herald mailbox simulator)"),
        phase: "rcpt".to_owned(),
    }
}

/// The answer the simulator gives `local` on its attempt after
/// `attempts` earlier ones, and what follows a delivery.
pub fn simulate(local: &str, attempts: u32) -> (SmtpAnswer, Then) {
    let delivered = |then| (answer(250, "2.0.0", "Ok: delivered"), then);
    match local.to_ascii_lowercase().as_str() {
        "success" => delivered(Then::Nothing),
        "complaint" => delivered(Then::Complaint),
        "ooto" => delivered(Then::AutoReply),
        "softbounce" if attempts < SOFT_DEFERRALS => {
            (answer(452, "4.2.2", "Mailbox full, try again later"), Then::Nothing)
        }
        "softbounce" => delivered(Then::Nothing),
        _ => (answer(550, "5.1.1", "No such user here"), Then::Nothing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_plays_its_outcome() {
        assert_eq!(simulate("success", 0).0.code, 250);
        assert_eq!(simulate("Bounce", 0).0.enhanced.as_deref(), Some("5.1.1"));
        assert_eq!(simulate("softbounce", 0).0.code, 452);
        assert_eq!(simulate("softbounce", 1).0.code, 452);
        assert_eq!(simulate("softbounce", 2).0.code, 250);
        assert_eq!(simulate("complaint", 0).1, Then::Complaint);
        assert_eq!(
            simulate("ooto", 0),
            (answer(250, "2.0.0", "Ok: delivered"), Then::AutoReply)
        );
        assert!(is_suppressed("SUPPRESSED", "Simulator.Herald.Test"));
        assert!(!is_suppressed("suppressed", "example.com"));
    }
}
