//! Self-describing, signed keys: a `paymentKey` or `billingKey` that Gazua mints carries what
//! an instance needs to answer for it without having seen it (amount, orderId, orderName, tag,
//! time; a virtual account's bank, customer, issue and due times), so a fleet sharing a seed
//! agrees on every minted key without shared state.
//!
//! Layout: a 4-character prefix (`gzp0`/`gzp1` for payments without/with a tag, `gzb0` for
//! billing keys), then URL-safe base64 (no padding) of `payload ‖ mac`. The mac is 10 bytes of
//! xxh3-128 keyed by a key derived from the seed, over prefix and payload: it tells keys Gazua
//! minted from look-alikes and from edited ones. It is not a cryptographic MAC — Gazua is a mock,
//! and nothing secret is protected by it. Keys are at most [`MAX_KEY_LEN`] characters, the PG's
//! `paymentKey` limit; the orderName is truncated (ending in `…`) to fit.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use xxhash_rust::xxh3::{xxh3_64_with_seed, xxh3_128_with_seed};

/// The PG's `paymentKey` length limit.
pub const MAX_KEY_LEN: usize = 200;
const PREFIX_LEN: usize = 4;
const MAC_LEN: usize = 10;
/// Bytes of payload + mac that fit in `MAX_KEY_LEN` characters after the prefix.
const MAX_BYTES: usize = (MAX_KEY_LEN - PREFIX_LEN) / 4 * 3;
const MAX_PAYLOAD: usize = MAX_BYTES - MAC_LEN;

/// A payment key's prefix when it carries a tag: cheap to look for before decoding.
pub const TAGGED_PAYMENT_PREFIX: &str = "gzp1";
const PAYMENT_PREFIX: &str = "gzp0";
const BILLING_PREFIX: &str = "gzb0";

/// Signs and reads minted keys; every instance built with the same seed agrees.
#[derive(Clone)]
pub struct KeyMint {
    mac_key: u64,
}

/// What a minted `paymentKey` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedPayment {
    pub billing: bool,
    /// Unix seconds of minting: the payment's `requestedAt`.
    pub at: i64,
    pub amount: u64,
    pub order_id: String,
    /// Possibly truncated to fit the key (then ending in `…`).
    pub order_name: Option<String>,
    /// The inner text of the `[gazua: …]` tag the payment was created with.
    pub tag: Option<String>,
    /// A virtual account's payment (`method: VIRTUAL_ACCOUNT`): what an instance with no
    /// record of it (`--ledger stateless`) needs to show it.
    pub account: Option<MintedAccount>,
}

/// The virtual account a minted key carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedAccount {
    /// `bankCode`.
    pub bank: String,
    /// `customerName`, cut to [`MAX_CUSTOMER`] bytes (ending in `…`) to leave the tag room.
    pub customer: String,
    /// When the account was issued with the key (`POST /v1/virtual-accounts`); `None`:
    /// issued later, at its confirm.
    pub issued: Option<Issued>,
}

/// An account issued with its key, in milliseconds after `at` (whole seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    /// The issue (under 1,000: `at` is the second).
    pub at_ms: u64,
    /// The due date.
    pub due_ms: u64,
}

/// The most bytes of a virtual account's `customerName` a key carries.
pub const MAX_CUSTOMER: usize = 30;

/// `text` cut to at most `max` bytes at a character boundary, ending in `…` when cut.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = "…";
    let mut end = max.saturating_sub(ellipsis.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

/// What a minted `billingKey` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MintedBilling {
    pub at: i64,
    /// xxh3 of the `customerKey` it was issued for.
    pub customer: u64,
}

/// Why a payment key could not be minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// Bytes left for the tag once the orderId is in.
    pub room: usize,
}

impl KeyMint {
    pub fn new(seed: u64) -> Self {
        KeyMint {
            mac_key: xxh3_64_with_seed(b"gazua-pay minted-key signing", seed),
        }
    }

    fn mac(&self, prefix: &str, payload: &[u8]) -> [u8; MAC_LEN] {
        let seeded = xxh3_64_with_seed(prefix.as_bytes(), self.mac_key);
        let full = xxh3_128_with_seed(payload, seeded).to_le_bytes();
        let mut mac = [0; MAC_LEN];
        mac.copy_from_slice(&full[..MAC_LEN]);
        mac
    }

    fn seal(&self, prefix: &str, mut payload: Vec<u8>) -> String {
        let mac = self.mac(prefix, &payload);
        payload.extend_from_slice(&mac);
        let mut key = String::with_capacity(PREFIX_LEN + payload.len().div_ceil(3) * 4);
        key.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut key);
        key
    }

    /// The payload of `key` if Gazua minted it with this seed and `prefix`.
    fn open(&self, key: &str, prefixes: &[&str]) -> Option<(usize, Vec<u8>)> {
        if key.len() > MAX_KEY_LEN || key.len() < PREFIX_LEN {
            return None;
        }
        let (prefix, rest) = key.split_at_checked(PREFIX_LEN)?;
        let which = prefixes.iter().position(|p| *p == prefix)?;
        let mut bytes = URL_SAFE_NO_PAD.decode(rest).ok()?;
        let body_len = bytes.len().checked_sub(MAC_LEN)?;
        if self.mac(prefix, &bytes[..body_len]) != bytes[body_len..] {
            return None;
        }
        bytes.truncate(body_len);
        Some((which, bytes))
    }

    /// Mints a payment key. Room goes to the orderId, then the tag, then the orderName, which
    /// is cut to fit; a tag too long to fit beside the orderId is an error.
    pub fn mint_payment(&self, p: &MintedPayment) -> Result<String, TooLong> {
        let mut out = Vec::with_capacity(MAX_PAYLOAD);
        // The kind: 0 a card payment, 1 a billing charge, 2 a virtual account issued at its
        // confirm, 3 one issued with the key.
        out.push(match &p.account {
            None => u8::from(p.billing),
            Some(a) if a.issued.is_none() => 2,
            Some(_) => 3,
        });
        out.extend_from_slice(&p.at.clamp(0, (1 << 40) - 1).to_be_bytes()[3..]);
        put_varint(&mut out, p.amount);
        put_text(&mut out, &p.order_id);
        if let Some(a) = &p.account {
            put_text(&mut out, &a.bank);
            put_text(&mut out, &cut(&a.customer, MAX_CUSTOMER));
            if let Some(issued) = a.issued {
                put_varint(&mut out, issued.at_ms);
                put_varint(&mut out, issued.due_ms);
            }
        }
        // Tag and name lengths (1 byte each) are still to come.
        let room = MAX_PAYLOAD.saturating_sub(out.len() + 2);
        let tag = p.tag.as_deref().unwrap_or("");
        if tag.len() > room || tag.len() > 255 {
            return Err(TooLong { room });
        }
        put_text(&mut out, tag);
        match &p.order_name {
            None => out.push(255),
            Some(name) => {
                let room = (MAX_PAYLOAD - out.len() - 1).min(254);
                if name.len() <= room {
                    put_text(&mut out, name);
                } else {
                    let ellipsis = "…";
                    let mut cut = room.saturating_sub(ellipsis.len());
                    while !name.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    out.push((cut + ellipsis.len()) as u8);
                    out.extend_from_slice(&name.as_bytes()[..cut]);
                    out.extend_from_slice(ellipsis.as_bytes());
                }
            }
        }
        let prefix = if tag.is_empty() {
            PAYMENT_PREFIX
        } else {
            TAGGED_PAYMENT_PREFIX
        };
        Ok(self.seal(prefix, out))
    }

    /// The signature a checkout URL carries over its redirect targets (16 hex digits): an
    /// instance with the same seed checks it, so an edited URL is no open redirect.
    pub fn sign_checkout(&self, key: &str, success: &str, fail: &str) -> String {
        let mut text = Vec::with_capacity(key.len() + success.len() + fail.len() + 2);
        for part in [key, success, fail] {
            text.extend_from_slice(part.as_bytes());
            // A byte no URL or key contains keeps the parts apart.
            text.push(0);
        }
        format!(
            "{:016x}",
            xxh3_64_with_seed(&text, self.mac_key ^ 0x0063_6b6f_7574)
        )
    }

    /// What a payment key says, if Gazua minted it with this seed.
    pub fn read_payment(&self, key: &str) -> Option<MintedPayment> {
        let (_, bytes) = self.open(key, &[PAYMENT_PREFIX, TAGGED_PAYMENT_PREFIX])?;
        let mut r = Reader { bytes: &bytes };
        let kind = r.byte()?;
        let at = r
            .bytes(5)?
            .iter()
            .fold(0i64, |acc, b| acc << 8 | i64::from(*b));
        let amount = r.varint()?;
        let order_id = r.text()?.to_owned();
        let account = match kind {
            0 | 1 => None,
            2 | 3 => Some(MintedAccount {
                bank: r.text()?.to_owned(),
                customer: r.text()?.to_owned(),
                issued: match kind {
                    3 => Some(Issued {
                        at_ms: r.varint()?,
                        due_ms: r.varint()?,
                    }),
                    _ => None,
                },
            }),
            _ => return None,
        };
        let tag = Some(r.text()?).filter(|t| !t.is_empty()).map(str::to_owned);
        let order_name = match r.byte()? {
            255 => None,
            len => Some(
                std::str::from_utf8(r.bytes(usize::from(len))?)
                    .ok()?
                    .to_owned(),
            ),
        };
        Some(MintedPayment {
            billing: kind == 1,
            at,
            amount,
            order_id,
            order_name,
            tag,
            account,
        })
    }

    /// Mints a billing key for `customer_key`.
    pub fn mint_billing(&self, at: i64, customer_key: &str) -> String {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&at.clamp(0, (1 << 40) - 1).to_be_bytes()[3..]);
        out.extend_from_slice(&customer_hash(customer_key).to_le_bytes());
        self.seal(BILLING_PREFIX, out)
    }

    pub fn read_billing(&self, key: &str) -> Option<MintedBilling> {
        let (_, bytes) = self.open(key, &[BILLING_PREFIX])?;
        let mut r = Reader { bytes: &bytes };
        let at = r
            .bytes(5)?
            .iter()
            .fold(0i64, |acc, b| acc << 8 | i64::from(*b));
        let customer = u64::from_le_bytes(r.bytes(8)?.try_into().ok()?);
        Some(MintedBilling { at, customer })
    }
}

/// The hash a billing key keeps of its `customerKey`.
pub fn customer_hash(customer_key: &str) -> u64 {
    xxh3_64_with_seed(customer_key.as_bytes(), 0x6761_7a75_615f_636b)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Length-prefixed text; callers keep it under 255 bytes (orderId ≤ 64, tag checked).
fn put_text(out: &mut Vec<u8>, text: &str) {
    out.push(text.len().min(254) as u8);
    out.extend_from_slice(&text.as_bytes()[..text.len().min(254)]);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        Some(*first)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = self.byte()?;
        std::str::from_utf8(self.bytes(usize::from(len))?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MintedPayment {
        MintedPayment {
            billing: false,
            at: 1_707_794_294,
            amount: 15_000,
            order_id: "order-20240213-0001".into(),
            order_name: Some("토스 티셔츠 외 2건".into()),
            tag: Some("outcome=declined(INSUFFICIENT_BALANCE); latency=2s".into()),
            account: None,
        }
    }

    #[test]
    fn a_virtual_accounts_key_carries_its_bank_customer_and_due_date() {
        let mint = KeyMint::new(3);
        let issued = Issued {
            at_ms: 731,
            due_ms: 604_800_731,
        };
        for issued in [None, Some(issued)] {
            let p = MintedPayment {
                account: Some(MintedAccount {
                    bank: "20".into(),
                    customer: "홍길동".into(),
                    issued,
                }),
                ..sample()
            };
            let key = mint.mint_payment(&p).unwrap();
            assert!(key.len() <= MAX_KEY_LEN);
            assert_eq!(mint.read_payment(&key), Some(p));
        }
        let long = MintedPayment {
            account: Some(MintedAccount {
                bank: "20".into(),
                customer: "김".repeat(40),
                issued: None,
            }),
            ..sample()
        };
        let back = mint
            .read_payment(&mint.mint_payment(&long).unwrap())
            .unwrap();
        let customer = back.account.unwrap().customer;
        assert!(
            customer.len() <= MAX_CUSTOMER && customer.ends_with('…'),
            "{customer}"
        );
    }

    #[test]
    fn a_minted_key_reads_back_on_another_mint_with_the_same_seed() {
        let key = KeyMint::new(7).mint_payment(&sample()).unwrap();
        assert!(key.len() <= MAX_KEY_LEN);
        assert!(key.starts_with(TAGGED_PAYMENT_PREFIX));
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(KeyMint::new(7).read_payment(&key), Some(sample()));
        assert_eq!(
            KeyMint::new(8).read_payment(&key),
            None,
            "another seed's mint refuses it"
        );
    }

    #[test]
    fn an_edited_or_foreign_key_is_not_read() {
        let mint = KeyMint::new(1);
        let key = mint.mint_payment(&sample()).unwrap();
        let mut edited = key.clone().into_bytes();
        let last = edited.len() - 1;
        edited[last] = if edited[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            mint.read_payment(std::str::from_utf8(&edited).unwrap()),
            None
        );
        assert_eq!(
            mint.read_payment("5EnNZRJGvaBX7zk2yd8ydw26XvwXkLrx9POLqKQjmAw4b0e1"),
            None
        );
        assert_eq!(mint.read_payment("gzp1"), None);
        assert_eq!(mint.read_billing(&key), None);
    }

    #[test]
    fn a_long_order_name_is_cut_to_fit_and_says_so() {
        let mint = KeyMint::new(1);
        let p = MintedPayment {
            order_id: "o".repeat(64),
            order_name: Some("가".repeat(100)),
            tag: None,
            ..sample()
        };
        let key = mint.mint_payment(&p).unwrap();
        assert!(key.len() <= MAX_KEY_LEN, "{}", key.len());
        let back = mint.read_payment(&key).unwrap();
        let name = back.order_name.unwrap();
        assert!(name.ends_with('…') && name.len() < 300, "{name}");
        assert_eq!(back.order_id, p.order_id);
    }

    #[test]
    fn a_tag_that_cannot_fit_beside_the_order_id_is_refused() {
        let p = MintedPayment {
            order_id: "o".repeat(64),
            tag: Some("x".repeat(100)),
            ..sample()
        };
        assert!(KeyMint::new(1).mint_payment(&p).is_err());
    }

    #[test]
    fn billing_keys_carry_the_customer() {
        let mint = KeyMint::new(3);
        let key = mint.mint_billing(1_700_000_000, "customer-1");
        let read = mint.read_billing(&key).unwrap();
        assert_eq!(read.customer, customer_hash("customer-1"));
        assert_eq!(read.at, 1_700_000_000);
        assert_eq!(mint.read_payment(&key), None);
    }
}
