#!/usr/bin/env python3
"""Writes the bounce classifier's knowledge tables (crates/bounces/src/tables/
{reasons,rhost,lhost}.rs) from the facts transcribed in this folder.

Run from the repository root: python3 research/sisimai/gen_tables.py
The output is committed; rerun after correcting a transcription. Each table
entry carries a comment naming the Sisimai module (and commit) it reflects.
Nothing here is read at run time.
"""
import re
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent.parent / "crates/bounces/src/tables"

VARIANTS = """AuthFailure BadReputation Blocked ContentError Delivered ExceedLimit Expired
FailedStartTls Feedback Filtered HasMoved HostUnknown MailboxFull MailerError MesgTooBig
NetworkError NoRelaying NotAccept NotCompliantRfc OnHold PolicyViolation Rejected RequirePtr
SecurityError SpamDetected Speeding Suppressed Suspend SyntaxError SystemError SystemFull
TooManyConn Undefined UserUnknown Vacation VirusDetected""".split()
BY_NAME = {v.lower(): v for v in VARIANTS}
# Older or newer Sisimai names for the same reasons (see README.md).
BY_NAME.update({"relayingdenied": "NoRelaying", "userunkonwn": "UserUnknown",
                "emailtoolarge": "MesgTooBig", "ratelimited": "TooManyConn"})


def variant(name):
    return "Reason::" + BY_NAME[name.lower()]


def lit(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def strs(items, indent):
    if not items:
        return "&[]"
    pad = " " * indent
    return "&[\n" + "".join(f"{pad}    {lit(x)},\n" for x in items) + f"{pad}]"


def short(commit):
    return commit.split()[0][:8] if commit else "?"


def header(what):
    return (f"//! {what}\n//!\n//! Written by `research/sisimai/gen_tables.py` from the facts in\n"
            "//! `research/sisimai/` (read from go-sisimai and rb-sisimai, BSD-2-Clause,\n"
            "//! (C) azumakuniyuki). Each entry names the Sisimai module it reflects.\n"
            "//! Edit the facts and rerun the script rather than this file.\n\n"
            + ("" if "remote-host" in what else "use super::Table;\n") + "use crate::Reason;\n\n")


def reasons():
    d = tomllib.load(open(HERE / "reasons.toml", "rb"))
    out = [header("Sisimai's phrase lists per reason (`reason/why-*.go`): what servers\n//! say, lower-case; `*` separates the parts of an aligned pattern, each\n//! searched after the previous one.")]
    out.append("/// Each reason's phrases.\npub(crate) const PHRASES: &[(Reason, &[&str])] = &[\n")
    for r in d["reason"]:
        if r["name"] not in BY_NAME or r["name"] in ("emailtoolarge", "ratelimited"):
            continue
        pats = [p.lower() for p in r.get("phrases", [])]
        pats += ["*".join(part.lower() for part in a) for a in r.get("aligned", [])]
        if not pats:
            continue
        pats = list(dict.fromkeys(pats))
        assert all(p.count("*") == 0 for p in r.get("phrases", [])), r["name"]
        out.append(f"    // {r['source']} @{short(r.get('source_commit'))}\n")
        out.append(f"    ({variant(r['name'])}, {strs(pats, 4)}),\n")
    out.append("];\n\n")
    rej = next(r for r in d["reason"] if r["name"] == "rejected")
    out.append("/// Words that make a rejection about the recipient or the client, not\n"
               "/// the sender (`reason/why-rejected.go`, its exclusions).\n")
    out.append(f"pub(crate) const REJECTED_NOT: &[&str] = {strs([p.lower() for p in rej['not_phrases']], 0)};\n\n")
    out.append("/// Local delivery agents' messages (`lda/lib.go`): how each is recognised\n"
               "/// in a diagnostic, then its messages per reason (mailererror when none\n/// matches).\n")
    out.append("pub(crate) const LDA: &[(&str, &[&str], Table)] = &[\n")
    for l in d["lda"]:
        out.append(f"    // lda/lib.go: {l['agent']}\n    (\n        {lit(l['agent'])},\n        {strs(l['detect_any'], 8)},\n        &[\n")
        for k, v in l.items():
            if k in ("agent", "detect_any"):
                continue
            out.append(f"            ({variant(k)}, {strs([x.lower() for x in v], 12)}),\n")
        out.append("        ],\n    ),\n")
    out.append("];\n")
    (OUT / "reasons.rs").write_text("".join(out))


STYLE = {"google": "Google", "microsoft": "Microsoft", "mimecast": "Mimecast", "cox": "Cox",
         "facebook": "Facebook", "franceptt": "FrancePtt", "godaddy": "GoDaddy", "iua": "Iua",
         "spectrum": "Spectrum", "nttdocomo": "NttDocomo", "gsuite": "GSuite"}


def as_of_reference(r):
    """A rule as go-sisimai had it at the release our reference answers come
    from (5-stable ed142ded, 2025-02): rules added since are left out, and
    mappings changed since are read the older way, where the transcribed
    notes say what the older code did."""
    note = r.get("note", "")
    if "newest only" in note or re.search(r"older go mapped \d+ to ''", note):
        return None
    m = re.search(r"older go(?: \([0-9a-f]+\))? had it under (\w+)", note)
    if m:
        return dict(r, reason=m.group(1))
    m = re.search(r"older go had '(\d+)' = (\w+)", note)
    if m:
        return dict(r, reason=m.group(2), labels=[m.group(1)])
    return r


def rhost():
    d = tomllib.load(open(HERE / "rhost.toml", "rb"))
    out = [header("Sisimai's remote-host tables (`rhost/for-*.go`): what one mailbox\n//! provider means by its own codes, labels and words.")]
    out.append("use super::{Rhost, Rule, Style};\n\n")
    out.append("/// Every remote host Sisimai knows, with the host names that select it.\npub(crate) const RHOSTS: &[Rhost] = &[\n")
    for h in d["rhost"]:
        if h.get("only_in") == "rb":
            continue  # superseded by a go module (ExchangeOnline, GoogleApps, TencentQQ)
        style = STYLE.get(h["name"], "Phrases")
        cs = any(r.get("case_sensitive") for r in h["rule"])
        out.append(f"    // {h['name']}: {h['source']} @{short(h.get('source_commit'))}\n    Rhost {{\n")
        out.append(f"        hosts: {strs(h['hosts'], 8)},\n")
        out.append(f"        style: Style::{style},\n        case_sensitive: {'true' if cs else 'false'},\n        rules: &[\n")
        for r in h["rule"]:
            if r["reason"] in ("", "undefined", "onhold"):
                continue  # not explicit: Sisimai goes on to its generic tables
            if any(not c.isdigit() for c in r.get("reply_codes", [])):
                continue  # a dead rule upstream (a reply code no server sends)
            r = as_of_reference(r)
            if r is None:
                continue
            if "2025-03-12" in r.get("note", ""):
                # A 2025 change (go-sisimai issue #64) that the Sisimai 5
                # release our reference answers come from does not have:
                # there, docomo's "550 Unknown user" after DATA is a
                # rejection by its reception filter.
                continue
            ph = r.get("phrases", [])
            if not cs:
                ph = [p.lower() for p in ph]
            replies = ", ".join(str(int(x)) for x in r.get("reply_codes", []))
            out.append(f"            Rule {{\n                reason: {variant(r['reason'])},\n")
            out.append(f"                codes: {strs(r.get('codes', []), 16)},\n")
            out.append(f"                replies: &[{replies}],\n")
            out.append(f"                labels: {strs(r.get('labels', []), 16)},\n")
            out.append(f"                phrases: {strs(ph, 16)},\n            }},\n")
        out.append("        ],\n    },\n")
    out.append("];\n")
    (OUT / "rhost.rs").write_text("".join(out))


PHRASE_MATCHES = ("", "case-sensitive substring of diagnosis", "substring of lower-cased diagnosis",
                  "case-sensitive substring", "substring of diagnosis",
                  "case-sensitive substring of diagnosis (errortable)",
                  "case-sensitive substring of diagnosis (UTF-8)",
                  "case-sensitive substring of diagnosis (only when no state code)")


# rb-only modules whose knowledge go-sisimai (the reference) dropped without
# a successor: go reads their bounces with the generic rules, so their
# message tables are not used (the decoders still recognise the message).
# The others live on in go: MXLogic and MailRu in Exim, X4 in qmail, Google
# and GSuite in Gmail, Office365 in Exchange2007, PowerMTA in rfc3464, and
# AOL, Facebook, MessageLabs and Outlook as remote-host modules.
NO_SUCCESSOR = ("mcafee", "receivingses", "amavis")


def lhost():
    mods = []
    for f in ("lhost-a-l", "lhost-extra-m", "lhost-m-z"):
        mods += tomllib.load(open(HERE / f"{f}.toml", "rb"))["lhost"]
    out = [header("The MTAs' and ESPs' own messages (`lhost/*.go`): what one decoder's\n//! bounces mean, applied when that decoder recognised the message.")]
    out.append("/// Decoder name, then its messages per reason (lower-case).\n")
    out.append("pub(crate) const MESSAGES: &[(&str, Table)] = &[\n")
    seen = set()
    for m in mods:
        rows = []
        for x in m.get("message", []):
            if x.get("match", "").startswith("exact MSEXCH code") and x["reason"].lower() in BY_NAME:
                rows.append((x["reason"], [f"({c.lower()})" for c in x["codes"]]))
                continue
            if x.get("match", "").startswith("exact NDR token") and "Unreachable" not in x.get("note", ""):
                # Exchange's NDR tokens (RESOLVER.ADR.RecipNotFound): a
                # token names one reason wherever it stands.
                rows.append((x["reason"], [p.lower() for p in x["phrases"]]))
                continue
            if x.get("match", "").strip() not in PHRASE_MATCHES or not x.get("phrases"):
                continue
            if x["reason"].lower() not in BY_NAME:
                continue
            ph = [p.lower() for p in x["phrases"] if len(p) >= 4]
            if ph:
                rows.append((x["reason"], ph))
        if m["name"] in NO_SUCCESSOR:
            continue
        if not rows or m["name"] in seen:
            continue
        seen.add(m["name"])
        tag = " (rb-sisimai)" if m.get("only_in") == "rb" else ""
        out.append(f"    // {m['source']}{tag}\n    (\n        {lit(m['name'])},\n        &[\n")
        for reason, ph in rows:
            out.append(f"            ({variant(reason)}, {strs(ph, 12)}),\n")
        out.append("        ],\n    ),\n")
    out.append("];\n\n")
    out.append("/// Decoder name, then the enhanced status codes (or `a.b.MIN-a.b.MAX`\n"
               "/// ranges) its tables give a reason.\n")
    out.append("pub(crate) const STATUS_CODES: &[(&str, Table)] = &[\n")
    for m in mods:
        rows = []
        for x in m.get("message", []):
            if x.get("match") or not x.get("codes") or x["reason"].lower() not in BY_NAME:
                continue
            codes = [c for c in x["codes"] if "|" not in c and "d" not in c]
            if codes:
                rows.append((x["reason"], list(dict.fromkeys(codes))))
        if rows:
            tag = " (rb-sisimai)" if m.get("only_in") == "rb" else ""
            out.append(f"    // {m['source']}{tag}\n    (\n        {lit(m['name'])},\n        &[\n")
            for reason, codes in rows:
                out.append(f"            ({variant(reason)}, {strs(codes, 12)}),\n")
            out.append("        ],\n    ),\n")
    out.append("];\n\n")
    out.append("/// Decoder name, then the banners one of which its bounces carry in the\n"
               "/// body (lower-case; `start_markers` of each module).\n")
    out.append("pub(crate) const START_MARKERS: &[(&str, &[&str])] = &[\n")
    seen = set()
    for m in mods:
        marks = [x.strip().lower() for x in m.get("start_markers", [])
                 if "|" not in x and "<" not in x and len(x.strip()) >= 10]
        if not marks or m["name"] in seen or m["name"] in ("rfc3464", "rfc3834", "arf"):
            continue
        seen.add(m["name"])
        out.append(f"    // {m['source']}\n    ({lit(m['name'])}, {strs(marks, 4)}),\n")
    out.append("];\n")
    (OUT / "lhost.rs").write_text("".join(out))


if __name__ == "__main__":
    reasons()
    rhost()
    lhost()
