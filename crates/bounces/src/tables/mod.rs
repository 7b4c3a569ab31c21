//! The classifier's knowledge, as Sisimai holds it: phrase lists per reason
//! ([`reasons`]), remote hosts' code tables ([`rhost`]) and the MTAs' own
//! messages ([`lhost`]). The data is written by
//! `research/sisimai/gen_tables.py`; the types that give it meaning live
//! here, the logic in `classify`, `rhost` and `decoders`.

pub(crate) mod lhost;
pub(crate) mod reasons;
pub(crate) mod rhost;

use crate::Reason;

/// Reasons and the words (or codes) that say each.
pub(crate) type Table = &'static [(Reason, &'static [&'static str])];

/// How a remote host's table is read (`rhost/for-*.go`: each module has
/// its own matching logic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Any phrase of a rule in the text.
    Phrases,
    /// Google: reply code, status and phrase all match, the class digit
    /// ignored and the status matched as a prefix (`7.1` matches `7.10`).
    Google,
    /// Google Workspace: phrases, with host-not-found only for permanent
    /// failures and network errors only for temporary ones.
    GSuite,
    /// Microsoft: the status (exact, or within a `a.b.MIN-a.b.MAX` range)
    /// and a phrase; then Outlook.com's postmaster labels with the reply.
    Microsoft,
    /// Mimecast: the reply code exactly and a phrase.
    Mimecast,
    /// Cox: the label after `AUP#`, then phrases.
    Cox,
    /// Facebook: the label around the first `-` (`RCP-P2`).
    Facebook,
    /// Orange and La Poste: the number after `LPN`/`OFR`/`OUK`, by suffix
    /// (`20X` for 200–209), then phrases.
    FrancePtt,
    /// GoDaddy: the ` IBnnn` label, then phrases.
    GoDaddy,
    /// i.ua: the number in `.i.ua/err/N/`.
    Iua,
    /// Spectrum: the four digits after `AUP#`, exact or in a range.
    Spectrum,
    /// NTT Docomo: the status first, then phrases, then the SMTP command.
    NttDocomo,
}

/// One rule of a remote host's table.
#[derive(Debug)]
pub(crate) struct Rule {
    pub reason: Reason,
    /// Enhanced status codes (or `a.b.MIN-a.b.MAX` ranges).
    pub codes: &'static [&'static str],
    /// SMTP reply codes.
    pub replies: &'static [u16],
    /// The host's own error labels.
    pub labels: &'static [&'static str],
    /// Phrases: lower-case unless the host's table is case-sensitive.
    pub phrases: &'static [&'static str],
}

/// A remote host Sisimai knows.
#[derive(Debug)]
pub(crate) struct Rhost {
    /// Host-name suffixes that select it.
    pub hosts: &'static [&'static str],
    pub style: Style,
    /// Whether its phrases are compared with the text as written.
    pub case_sensitive: bool,
    pub rules: &'static [Rule],
}
