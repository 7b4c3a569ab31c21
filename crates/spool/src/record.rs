//! What the journal and the data segments hold, and their framing.
//!
//! Journal frame: `len u32 | crc32 u32 | kind u8 | payload`, where `len`
//! counts kind and payload and the CRC covers them. A frame that is short or
//! fails its CRC marks the end of what was durably written.
//!
//! Data record: `magic u32 | len u32 | crc32 u32 | body`. The journal keeps
//! each body's [`Location`] with its CRC, so a body is checked when read.

use std::net::IpAddr;

use herald_types::{AccountId, EmailAddress, Envelope, ReversePath};

use crate::codec::{self, Corrupt, Reader};
use crate::state::{RcptState, RcptStatus};

/// Marks the start of a data record ("HRLD").
pub const DATA_MAGIC: u32 = 0x4852_4c44;
pub const DATA_HEADER: usize = 12;
pub const FRAME_HEADER: usize = 8;
/// A journal frame larger than this is damage, not data (a message with the
/// most recipients Herald accepts encodes far below it).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A message as first written (no stream, tags or metadata); still read.
const KIND_MESSAGE_V1: u8 = 1;
/// A message with stream, tags and metadata.
const KIND_MESSAGE: u8 = 4;
const KIND_RECIPIENT: u8 = 2;
const KIND_DONE: u8 = 3;
const KIND_EVENT: u8 = 5;

/// Where a body lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub segment: u32,
    /// Offset of the record header in the segment.
    pub offset: u64,
    /// Length of the body.
    pub len: u32,
    pub crc: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message and the full state of each recipient: written when the
    /// message is accepted, and again for every live message at a checkpoint.
    Message {
        id: [u8; 16],
        loc: Location,
        envelope: Box<Envelope>,
        states: Vec<RcptState>,
    },
    /// The new state of one recipient. Absolute, not a change, so replaying
    /// it twice is harmless.
    Recipient { id: [u8; 16], index: u32, state: RcptState },
    /// Every recipient is final; the message leaves the queue.
    Done { id: [u8; 16] },
    /// An event journaled with the change it records (or alone), as JSON,
    /// under its ticket: replayed after a crash until the event pipeline
    /// has stored it (the store keeps one copy of an event id).
    Event { seq: u64, json: Vec<u8> },
}

fn put_state(buf: &mut Vec<u8>, s: &RcptState) {
    codec::put_u8(buf, s.status as u8);
    codec::put_u16(buf, s.attempts);
    codec::put_i64(buf, s.next_attempt_ms);
}

fn get_state(r: &mut Reader<'_>) -> Result<RcptState, Corrupt> {
    let status = RcptStatus::from_u8(r.u8()?).ok_or(Corrupt("unknown recipient status"))?;
    Ok(RcptState {
        status,
        attempts: r.u16()?,
        next_attempt_ms: r.i64()?,
    })
}

fn put_envelope(buf: &mut Vec<u8>, e: &Envelope) {
    match &e.sender {
        ReversePath::Null => codec::put_str(buf, ""),
        ReversePath::Address(a) => codec::put_str(buf, &a.to_string()),
    }
    codec::put_u32(buf, u32::try_from(e.recipients.len()).unwrap_or(u32::MAX));
    for r in &e.recipients {
        codec::put_str(buf, &r.to_string());
    }
    codec::put_str(buf, e.account.as_str());
    match e.client_ip {
        IpAddr::V4(v4) => {
            codec::put_u8(buf, 4);
            buf.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            codec::put_u8(buf, 6);
            buf.extend_from_slice(&v6.octets());
        }
    }
    codec::put_i64(buf, crate::state::to_ms(e.received_at));
}

fn put_extras(buf: &mut Vec<u8>, e: &Envelope) {
    codec::put_str(buf, &e.stream);
    codec::put_u16(buf, u16::try_from(e.tags.len()).unwrap_or(u16::MAX));
    for t in e.tags.iter().take(usize::from(u16::MAX)) {
        codec::put_str(buf, t);
    }
    codec::put_u16(buf, u16::try_from(e.metadata.len()).unwrap_or(u16::MAX));
    for (k, v) in e.metadata.iter().take(usize::from(u16::MAX)) {
        codec::put_str(buf, k);
        codec::put_str(buf, v);
    }
}

fn get_extras(r: &mut Reader<'_>, e: &mut Envelope) -> Result<(), Corrupt> {
    e.stream = r.str()?.to_owned();
    let tags = r.u16()?;
    e.tags = (0..tags)
        .map(|_| r.str().map(str::to_owned))
        .collect::<Result<_, _>>()?;
    let pairs = r.u16()?;
    e.metadata = (0..pairs)
        .map(|_| Ok((r.str()?.to_owned(), r.str()?.to_owned())))
        .collect::<Result<_, Corrupt>>()?;
    Ok(())
}

fn get_envelope(r: &mut Reader<'_>) -> Result<Envelope, Corrupt> {
    let sender = match r.str()? {
        "" => ReversePath::Null,
        s => ReversePath::Address(EmailAddress::parse(s).map_err(|_| Corrupt("bad sender"))?),
    };
    let count = r.u32()?;
    let mut recipients = Vec::with_capacity(usize::try_from(count.min(10_000)).unwrap_or(0));
    for _ in 0..count {
        recipients.push(EmailAddress::parse(r.str()?).map_err(|_| Corrupt("bad recipient"))?);
    }
    let account = AccountId::parse(r.str()?).map_err(|_| Corrupt("bad account id"))?;
    let client_ip = match r.u8()? {
        4 => IpAddr::from(<[u8; 4]>::try_from(r.take(4)?).map_err(|_| Corrupt("bad IPv4"))?),
        6 => IpAddr::from(<[u8; 16]>::try_from(r.take(16)?).map_err(|_| Corrupt("bad IPv6"))?),
        _ => return Err(Corrupt("bad address family")),
    };
    Ok(Envelope {
        sender,
        recipients,
        account,
        client_ip,
        received_at: crate::state::from_ms(r.i64()?),
        stream: herald_types::DEFAULT_STREAM.to_owned(),
        tags: Vec::new(),
        metadata: Vec::new(),
    })
}

impl Record {
    /// Appends this record, framed, to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER]);
        match self {
            Self::Message {
                id,
                loc,
                envelope,
                states,
            } => {
                out.truncate(start);
                encode_message_parts(*id, *loc, envelope, states, out);
                return;
            }
            Self::Recipient { id, index, state } => {
                codec::put_u8(out, KIND_RECIPIENT);
                out.extend_from_slice(id);
                codec::put_u32(out, *index);
                put_state(out, state);
            }
            Self::Done { id } => {
                codec::put_u8(out, KIND_DONE);
                out.extend_from_slice(id);
            }
            Self::Event { seq, json } => {
                out.truncate(start);
                encode_event(*seq, json, out);
                return;
            }
        }
        seal_frame(out, start);
    }

    fn decode_body(body: &[u8]) -> Result<Self, Corrupt> {
        let mut r = Reader::new(body);
        let record = match r.u8()? {
            kind @ (KIND_MESSAGE | KIND_MESSAGE_V1) => {
                let id = r.id()?;
                let loc = Location {
                    segment: r.u32()?,
                    offset: r.u64()?,
                    len: r.u32()?,
                    crc: r.u32()?,
                };
                let envelope = get_envelope(&mut r)?;
                let n = r.u32()?;
                if usize::try_from(n).ok() != Some(envelope.recipients.len()) {
                    return Err(Corrupt("state count differs from recipient count"));
                }
                let states = (0..n).map(|_| get_state(&mut r)).collect::<Result<_, _>>()?;
                let mut envelope = Box::new(envelope);
                if kind == KIND_MESSAGE {
                    get_extras(&mut r, &mut envelope)?;
                }
                Self::Message {
                    id,
                    loc,
                    envelope,
                    states,
                }
            }
            KIND_RECIPIENT => Self::Recipient {
                id: r.id()?,
                index: r.u32()?,
                state: get_state(&mut r)?,
            },
            KIND_DONE => Self::Done { id: r.id()? },
            KIND_EVENT => {
                let seq = r.u64()?;
                let len = r.u32()?;
                let json = r
                    .take(usize::try_from(len).map_err(|_| Corrupt("event too long"))?)?
                    .to_vec();
                Self::Event { seq, json }
            }
            _ => return Err(Corrupt("unknown record kind")),
        };
        if !r.is_empty() {
            return Err(Corrupt("trailing bytes"));
        }
        Ok(record)
    }

    /// Decodes the frame at the start of `buf`: the record and the bytes it
    /// took, or `None` where the durable part of the journal ends (a short,
    /// oversized or CRC-failing frame).
    pub fn decode_frame(buf: &[u8]) -> Option<(Result<Self, Corrupt>, usize)> {
        let header = buf.get(..FRAME_HEADER)?;
        let len = usize::try_from(u32::from_le_bytes(header[..4].try_into().ok()?)).ok()?;
        let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
        if len == 0 || len > MAX_FRAME {
            return None;
        }
        let body = buf.get(FRAME_HEADER..FRAME_HEADER + len)?;
        if crc32fast::hash(body) != crc {
            return None;
        }
        Some((Self::decode_body(body), FRAME_HEADER + len))
    }
}

/// Appends a framed message record from borrowed parts, so the writer never
/// copies an envelope to journal it.
pub fn encode_message_parts(id: [u8; 16], loc: Location, envelope: &Envelope, states: &[RcptState], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    codec::put_u8(out, KIND_MESSAGE);
    out.extend_from_slice(&id);
    codec::put_u32(out, loc.segment);
    codec::put_u64(out, loc.offset);
    codec::put_u32(out, loc.len);
    codec::put_u32(out, loc.crc);
    put_envelope(out, envelope);
    codec::put_u32(out, u32::try_from(states.len()).unwrap_or(u32::MAX));
    for s in states {
        put_state(out, s);
    }
    put_extras(out, envelope);
    seal_frame(out, start);
}

/// Appends a framed event record from borrowed parts.
pub fn encode_event(seq: u64, json: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    codec::put_u8(out, KIND_EVENT);
    codec::put_u64(out, seq);
    codec::put_u32(out, u32::try_from(json.len()).unwrap_or(u32::MAX));
    out.extend_from_slice(json);
    seal_frame(out, start);
}

/// Fills in the length and CRC of the frame that starts at `start`.
fn seal_frame(out: &mut [u8], start: usize) {
    let body = &out[start + FRAME_HEADER..];
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes();
    let crc = crc32fast::hash(body).to_le_bytes();
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// Appends a data record for `body` to `out`; returns the body's CRC.
pub fn encode_data(body: &[u8], out: &mut Vec<u8>) -> u32 {
    let crc = encode_data_header(body, out);
    out.extend_from_slice(body);
    crc
}

/// Appends the header of a data record for `body` (the body itself is
/// written after it by the caller); returns the body's CRC.
pub fn encode_data_header(body: &[u8], out: &mut Vec<u8>) -> u32 {
    let crc = crc32fast::hash(body);
    codec::put_u32(out, DATA_MAGIC);
    codec::put_u32(out, u32::try_from(body.len()).unwrap_or(u32::MAX));
    codec::put_u32(out, crc);
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            sender: ReversePath::Address(EmailAddress::parse("news@example.com").unwrap()),
            recipients: vec![
                EmailAddress::parse("a@example.net").unwrap(),
                EmailAddress::parse("用户@例子.广告").unwrap(),
            ],
            account: AccountId::generate(),
            client_ip: "2001:db8::1".parse().unwrap(),
            received_at: crate::state::from_ms(1_700_000_000_123),
            stream: "newsletter".into(),
            tags: vec!["welcome".into(), "spring".into()],
            metadata: vec![("order".into(), "1234".into())],
        }
    }

    #[test]
    fn every_record_kind_round_trips() {
        let state = RcptState {
            status: RcptStatus::Pending,
            attempts: 3,
            next_attempt_ms: 42,
        };
        let records = [
            Record::Message {
                id: [1; 16],
                loc: Location {
                    segment: 2,
                    offset: 3,
                    len: 4,
                    crc: 5,
                },
                envelope: Box::new(envelope()),
                states: vec![
                    state,
                    RcptState {
                        status: RcptStatus::Delivered,
                        ..state
                    },
                ],
            },
            Record::Recipient {
                id: [2; 16],
                index: 1,
                state,
            },
            Record::Done { id: [3; 16] },
            Record::Event {
                seq: 7,
                json: br#"{"type":"delivered"}"#.to_vec(),
            },
        ];
        let mut buf = Vec::new();
        for r in &records {
            r.encode_into(&mut buf);
        }
        let mut at = 0;
        for r in &records {
            let (decoded, used) = Record::decode_frame(&buf[at..]).expect("a whole frame");
            assert_eq!(decoded.as_ref(), Ok(r));
            at += used;
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn a_torn_or_flipped_frame_ends_the_journal() {
        let mut buf = Vec::new();
        Record::Done { id: [9; 16] }.encode_into(&mut buf);
        for cut in 0..buf.len() {
            assert!(Record::decode_frame(&buf[..cut]).is_none(), "torn at {cut}");
        }
        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(Record::decode_frame(&flipped).is_none());
        // Zeroes (a preallocated or sparse tail) are not a frame either.
        assert!(Record::decode_frame(&[0; 64]).is_none());
    }
}
