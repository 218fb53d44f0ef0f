//! A compact JSON writer for the rendered answers, byte for byte what `serde_json::to_writer`
//! writes, at a fraction of its cost on the zero-delay path.
//!
//! serde_json escapes every string byte by byte, the struct's field names included: for a
//! 1.2 KB payment that scan was most of the render (callgrind: about 12,000 of the 18,000
//! instructions a payment took). Here a string that needs no escaping (every field name, and
//! nearly every value) is checked with one branch-free pass and copied; a string that does
//! need escaping is handed to serde_json, so the escaping itself stays serde_json's.
//!
//! Only what the renderers use is supported: strings, integers, booleans, null, options,
//! structs and sequences. Anything else is an error, on which [`to_vec`] falls back to
//! serde_json for the whole value — never a different output.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// `value` as compact JSON, exactly as `serde_json::to_vec` writes it.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    if value.serialize(&mut Writer(&mut out)).is_err() {
        out.clear();
        // Writing into a Vec cannot fail; an empty object would still be JSON.
        if serde_json::to_writer(&mut out, value).is_err() {
            out.clear();
            out.extend_from_slice(b"{}");
        }
    }
    // Every test of the crate runs through this: the two writers agree on every answer.
    #[cfg(debug_assertions)]
    debug_assert_eq!(
        String::from_utf8_lossy(&out),
        serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()),
        "the fast JSON writer departed from serde_json"
    );
    out
}

/// A type the fast writer does not write; the caller falls back to serde_json.
#[derive(Debug)]
pub struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value the fast JSON writer does not write")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

/// No byte that JSON escapes: no control character, quote or backslash. A word at a time
/// (the classic word tests for "a byte below n" and "a byte equal to c", exact for whether any
/// byte matches); the tail as one more word overlapping the last, and a string shorter than a
/// word as two overlapping halves padded with spaces (which need no escaping).
#[inline]
fn plain(s: &[u8]) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    let below = |w: u64, n: u64| w.wrapping_sub(ONES * n) & !w & HIGH != 0;
    let clean = |w: u64| {
        !(below(w, 0x20)
            || below(w ^ (ONES * u64::from(b'"')), 1)
            || below(w ^ (ONES * u64::from(b'\\')), 1))
    };
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let half = |b: &[u8]| {
        u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")))
            | (ONES * u64::from(b' ')) << 32
    };
    match s.len() {
        0..=3 => s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\'),
        4..=7 => clean(half(&s[..4])) && clean(half(&s[s.len() - 4..])),
        n => s.chunks_exact(8).all(|w| clean(word(w))) && clean(word(&s[n - 8..])),
    }
}

#[inline]
fn string(out: &mut Vec<u8>, s: &str) {
    if plain(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, s).is_err() {
        // Writing a str into a Vec cannot fail.
        unreachable!("serde_json writes a str into a Vec");
    }
}

/// Lets a `Display` value write straight into the output.
struct Append<'a>(&'a mut Vec<u8>);

impl fmt::Write for Append<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Appends a number's decimal digits, as serde_json does (itoa).
fn integer(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// The integer methods of the serializer: decimal digits, as serde_json writes them.
macro_rules! integers {
    ($($method:ident: $t:ty),* $(,)?) => {
        $(
            fn $method(self, v: $t) -> Result<(), Unsupported> {
                integer(self.0, v);
                Ok(())
            }
        )*
    };
}

impl<'a, 'b> ser::Serializer for &'a mut Writer<'b> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a, 'b>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Compound<'a, 'b>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.0
            .extend_from_slice(if v { b"true" as &[u8] } else { b"false" });
        Ok(())
    }

    integers! {
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
    }

    /// Floats: serde_json's shortest round-trip form is not reproduced here.
    fn serialize_f32(self, _: f32) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_f64(self, _: f64) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        string(self.0, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        string(self.0, v);
        Ok(())
    }

    /// The value is written in place, then checked; should it need escaping, it is written
    /// again through serde_json (escaping the whole equals escaping its fragments).
    fn collect_str<T: fmt::Display + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        let start = self.0.len();
        self.0.push(b'"');
        let _ = write!(Append(self.0), "{value}");
        if plain(&self.0[start + 1..]) {
            self.0.push(b'"');
        } else {
            self.0.truncate(start);
            string(self.0, &value.to_string());
        }
        Ok(())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Unsupported> {
        Err(Unsupported)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a, 'b>, Unsupported> {
        self.0.push(b'[');
        Ok(Compound {
            writer: self,
            first: true,
        })
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsupported> {
        Err(Unsupported)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a, 'b>, Unsupported> {
        self.0.push(b'{');
        Ok(Compound {
            writer: self,
            first: true,
        })
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsupported> {
        Err(Unsupported)
    }
}

/// An object or an array being written.
pub struct Compound<'a, 'b> {
    writer: &'a mut Writer<'b>,
    first: bool,
}

impl Compound<'_, '_> {
    fn comma(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.writer.0.push(b',');
        }
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.comma();
        value.serialize(&mut *self.writer)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.writer.0.push(b']');
        Ok(())
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.comma();
        string(self.writer.0, key);
        self.writer.0.push(b':');
        value.serialize(&mut *self.writer)
    }

    fn end(self) -> Result<(), Unsupported> {
        self.writer.0.push(b'}');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Sample<'a> {
        plain: &'a str,
        escaped: &'a str,
        korean: &'a str,
        count: u64,
        signed: i64,
        yes: bool,
        nothing: (),
        absent: Option<u32>,
        present: Option<&'a str>,
        list: Vec<Inner>,
        empty: Vec<Inner>,
        shown: Shown,
        #[serde(rename = "type")]
        kind: &'a str,
    }

    #[derive(Serialize)]
    struct Inner {
        n: u8,
    }

    /// A `Display` value serialized with `collect_str`, with and without bytes to escape.
    struct Shown(&'static str);

    impl Serialize for Shown {
        fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }

    #[test]
    fn writes_what_serde_json_writes_escapes_included() {
        for text in [
            "plain",
            "quote \" back \\ tab \t nl \n ctl \u{1} del \u{7f}",
            "",
        ] {
            let sample = Sample {
                plain: "https://api.tosspayments.com/v1/payments/x/checkout",
                escaped: text,
                korean: "카드 결제가 승인되었습니다",
                count: u64::MAX,
                signed: i64::MIN,
                yes: true,
                nothing: (),
                absent: None,
                present: Some(text),
                list: vec![Inner { n: 1 }, Inner { n: 255 }],
                empty: vec![],
                shown: Shown(if text.is_empty() {
                    "a/b?c=d&e"
                } else {
                    "x\"y\u{8}"
                }),
                kind: "NORMAL",
            };
            let fast = to_vec(&sample, 16);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                serde_json::to_string(&sample).unwrap()
            );
        }
    }

    #[test]
    fn plain_finds_every_byte_json_escapes_wherever_it_is() {
        for bad in (0u8..0x20).chain([b'"', b'\\']) {
            for len in 1..20 {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = bad;
                    assert!(!plain(&s), "{bad:#x} at {at} of {len}");
                }
            }
        }
        let ok: Vec<u8> = (0x20u8..=0xff)
            .filter(|b| *b != b'"' && *b != b'\\')
            .collect();
        assert!(plain(&ok) && plain(b"") && plain("결제 승인 #1".as_bytes()));
    }

    #[test]
    fn a_value_it_does_not_write_falls_back_to_serde_json() {
        #[derive(Serialize)]
        struct WithFloat {
            a: &'static str,
            f: f64,
        }
        let value = WithFloat { a: "x", f: 0.1 };
        assert_eq!(to_vec(&value, 0), serde_json::to_vec(&value).unwrap());
        let map: std::collections::BTreeMap<&str, u8> = [("k", 1)].into();
        assert_eq!(to_vec(&map, 0), b"{\"k\":1}");
    }
}
