//! Signed tracking paths for load tests (`bench/api.sh`): N opens and N
//! clicks of one message, each for a distinct recipient, so none is a
//! repeat the open deduplication would fold.
//!
//! `cargo run --release -p herald-tracking --example tokens -- SECRET_FILE ACCOUNT_ID MESSAGE_ID N OUT_DIR`
//! writes OUT_DIR/opens.txt and OUT_DIR/clicks.txt, one path per line.

use std::io::Write;

use herald_tracking::{Keyring, Purpose, TrackToken};
use herald_types::{AccountId, MessageId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [secret, account, message, n, out] = args.as_slice() else {
        return Err("usage: tokens SECRET_FILE ACCOUNT_ID MESSAGE_ID N OUT_DIR".into());
    };
    let hex = std::fs::read_to_string(secret)?;
    let hex = hex.trim();
    let secret: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16))
        .collect::<Result<_, _>>()?;
    let keys = Keyring::new(&secret);
    let account = AccountId::parse(account)?;
    let message = MessageId::parse(message)?;
    let n: usize = n.parse()?;
    // Sent an hour ago: past any scanner window, as a person's click is.
    let sent_at = u32::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )? - 3600;
    for (purpose, file, url) in [
        (Purpose::Open, "opens.txt", None),
        (Purpose::Click, "clicks.txt", Some("https://acme.test/offer".to_owned())),
    ] {
        let mut w = std::io::BufWriter::new(std::fs::File::create(std::path::Path::new(out).join(file))?);
        let prefix = if purpose == Purpose::Open { "/t/o/" } else { "/t/c/" };
        for i in 0..n {
            let token = TrackToken {
                purpose,
                message: message.clone(),
                account: account.clone(),
                sent_at,
                recipient: format!("reader{i}@example.test"),
                url: url.clone(),
            }
            .encode(&keys)
            .ok_or("token too long")?;
            writeln!(w, "{prefix}{token}")?;
        }
        w.flush()?;
    }
    Ok(())
}
