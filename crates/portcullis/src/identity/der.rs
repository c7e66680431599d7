//! A strict DER reader: definite lengths in their shortest form, low tag numbers only, no
//! trailing bytes where a structure must end. Zero-copy and allocation-free; every read is
//! bounds-checked, so hostile input yields an error, never a panic.

/// Why bytes are not the DER that was expected. Static, so a refusal costs nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerError(pub(crate) &'static str);

impl std::fmt::Display for DerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) type DerResult<T> = Result<T, DerError>;

// Universal tags.
pub(crate) const BOOLEAN: u8 = 0x01;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0c;
pub(crate) const NUMERIC_STRING: u8 = 0x12;
pub(crate) const PRINTABLE_STRING: u8 = 0x13;
pub(crate) const IA5_STRING: u8 = 0x16;
pub(crate) const UTC_TIME: u8 = 0x17;
pub(crate) const GENERALIZED_TIME: u8 = 0x18;
pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;

/// Context-specific tag `[n]`, primitive.
pub(crate) const fn context(n: u8) -> u8 {
    0x80 | n
}

/// Context-specific tag `[n]`, constructed.
pub(crate) const fn context_constructed(n: u8) -> u8 {
    0xa0 | n
}

/// One tag-length-value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub(crate) tag: u8,
    /// The value bytes.
    pub(crate) content: &'a [u8],
    /// The whole encoding, header included.
    pub(crate) raw: &'a [u8],
}

/// Reads TLVs one after another from a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Reads the next TLV, whatever its tag.
    pub(crate) fn read(&mut self) -> DerResult<Tlv<'a>> {
        let data = self.rest;
        let (&tag, after_tag) = data.split_first().ok_or(DerError("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(DerError("high tag numbers are not used in certificates"));
        }
        let (&first, after_len) = after_tag.split_first().ok_or(DerError("truncated"))?;
        let (len, body) = if first < 0x80 {
            (usize::from(first), after_len)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 {
                return Err(DerError("indefinite length is not DER"));
            }
            if count > 4 {
                return Err(DerError("length does not fit"));
            }
            let bytes = after_len.get(..count).ok_or(DerError("truncated"))?;
            if bytes.first() == Some(&0) {
                return Err(DerError("length is not in its shortest form"));
            }
            let len = bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 {
                return Err(DerError("length is not in its shortest form"));
            }
            (len, after_len.get(count..).unwrap_or(&[]))
        };
        let content = body.get(..len).ok_or(DerError("truncated"))?;
        let header = data.len() - body.len();
        let raw = data.get(..header + len).ok_or(DerError("truncated"))?;
        self.rest = body.get(len..).unwrap_or(&[]);
        Ok(Tlv { tag, content, raw })
    }

    /// Reads the next TLV and insists on its tag; returns its value bytes.
    pub(crate) fn expect(&mut self, tag: u8, what: &'static str) -> DerResult<&'a [u8]> {
        self.expect_tlv(tag, what).map(|tlv| tlv.content)
    }

    /// Like [`Reader::expect`], returning the whole TLV.
    pub(crate) fn expect_tlv(&mut self, tag: u8, what: &'static str) -> DerResult<Tlv<'a>> {
        let tlv = self.read()?;
        if tlv.tag == tag {
            Ok(tlv)
        } else {
            Err(DerError(what))
        }
    }

    /// Reads the next TLV only if it carries `tag`.
    pub(crate) fn optional(&mut self, tag: u8) -> DerResult<Option<Tlv<'a>>> {
        if self.peek_tag() == Some(tag) {
            self.read().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Insists that nothing is left.
    pub(crate) fn finish(&self, what: &'static str) -> DerResult<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError(what))
        }
    }
}

/// Parses `data` as exactly one TLV with `tag` and returns its value bytes.
pub(crate) fn single<'a>(data: &'a [u8], tag: u8, what: &'static str) -> DerResult<&'a [u8]> {
    let mut reader = Reader::new(data);
    let content = reader.expect(tag, what)?;
    reader.finish(what)?;
    Ok(content)
}

/// A BOOLEAN's value (DER: 0x00 or 0xff).
pub(crate) fn boolean(content: &[u8]) -> DerResult<bool> {
    match content {
        [0x00] => Ok(false),
        [0xff] => Ok(true),
        _ => Err(DerError("BOOLEAN is not 0x00 or 0xff")),
    }
}

/// Checks an INTEGER's value bytes are minimally encoded (not empty, no redundant sign byte).
pub(crate) fn integer(content: &[u8]) -> DerResult<&[u8]> {
    match content {
        [] => Err(DerError("empty INTEGER")),
        [0x00, next, ..] if next & 0x80 == 0 => Err(DerError("INTEGER is not minimally encoded")),
        [0xff, next, ..] if next & 0x80 != 0 => Err(DerError("INTEGER is not minimally encoded")),
        _ => Ok(content),
    }
}

/// A small non-negative INTEGER (path lengths, policy skip counts).
pub(crate) fn small_unsigned(content: &[u8]) -> DerResult<u32> {
    let bytes = integer(content)?;
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(DerError("negative INTEGER where a count is expected"));
    }
    let significant = bytes.strip_prefix(&[0]).unwrap_or(bytes);
    if significant.len() > 4 {
        return Err(DerError("INTEGER too large"));
    }
    Ok(significant
        .iter()
        .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
}

/// A BIT STRING's bits (the unused-bit count checked and dropped).
pub(crate) fn bit_string(content: &[u8]) -> DerResult<&[u8]> {
    let (&unused, bits) = content.split_first().ok_or(DerError("empty BIT STRING"))?;
    if unused > 7 || (bits.is_empty() && unused != 0) {
        return Err(DerError("BIT STRING has a bad unused-bit count"));
    }
    if let Some(last) = bits.last() {
        if last & ((1u8 << unused) - 1) != 0 {
            return Err(DerError("BIT STRING has unused bits set"));
        }
    }
    Ok(bits)
}

/// Checks an OBJECT IDENTIFIER's value bytes: not empty, each arc minimally encoded and
/// terminated.
pub(crate) fn oid(content: &[u8]) -> DerResult<&[u8]> {
    if content.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(DerError("malformed OBJECT IDENTIFIER"));
    }
    let mut start = true;
    for &b in content {
        if start && b == 0x80 {
            return Err(DerError("OBJECT IDENTIFIER arc is not minimally encoded"));
        }
        start = b & 0x80 == 0;
    }
    Ok(content)
}

/// Attribute types that name nearly every certificate, pre-formatted: formatting arcs
/// one by one is a measurable share of building an identity.
const COMMON_OIDS: [(&[u8], &str); 8] = [
    (&[0x55, 0x04, 0x03], "2.5.4.3"),
    (&[0x55, 0x04, 0x0a], "2.5.4.10"),
    (&[0x55, 0x04, 0x0b], "2.5.4.11"),
    (&[0x55, 0x04, 0x06], "2.5.4.6"),
    (&[0x55, 0x04, 0x07], "2.5.4.7"),
    (&[0x55, 0x04, 0x08], "2.5.4.8"),
    (&[0x55, 0x04, 0x05], "2.5.4.5"),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "0.9.2342.19200300.100.1.25",
    ),
];

/// An OBJECT IDENTIFIER (value bytes already checked by [`oid`]) in dotted form.
pub(crate) fn oid_string(content: &[u8]) -> String {
    use std::fmt::Write;
    if let Some((_, dotted)) = COMMON_OIDS.iter().find(|(bytes, _)| *bytes == content) {
        return (*dotted).to_owned();
    }
    let mut out = String::with_capacity(content.len() * 3);
    let mut value: u128 = 0;
    let mut first = true;
    let mut overflow = false;
    for &b in content {
        match value.checked_mul(128) {
            Some(v) => value = v | u128::from(b & 0x7f),
            None => overflow = true,
        }
        if b & 0x80 != 0 {
            continue;
        }
        if overflow {
            // Arcs beyond 128 bits exist only in hostile input; name them without a value.
            out.push_str(if first { "2.?" } else { ".?" });
        } else if first {
            let (top, second) = match value {
                0..=39 => (0, value),
                40..=79 => (1, value - 40),
                _ => (2, value - 80),
            };
            let _ = write!(out, "{top}.{second}");
        } else {
            let _ = write!(out, ".{value}");
        }
        first = false;
        value = 0;
        overflow = false;
    }
    out
}

/// Seconds since the Unix epoch for a UTCTime or GeneralizedTime in the only form RFC 5280
/// allows: `YYMMDDHHMMSSZ` / `YYYYMMDDHHMMSSZ`.
pub(crate) fn time(tlv: &Tlv<'_>) -> DerResult<i64> {
    let bad = DerError("malformed time");
    let digits = |s: &[u8]| -> DerResult<i64> {
        s.iter().try_fold(0i64, |acc, b| {
            if b.is_ascii_digit() {
                Ok(acc * 10 + i64::from(b - b'0'))
            } else {
                Err(bad)
            }
        })
    };
    let (year, rest) = match (tlv.tag, tlv.content.len()) {
        (UTC_TIME, 13) => {
            let (yy, rest) = tlv.content.split_at(2);
            let yy = digits(yy)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
        }
        (GENERALIZED_TIME, 15) => {
            let (yyyy, rest) = tlv.content.split_at(4);
            (digits(yyyy)?, rest)
        }
        _ => return Err(bad),
    };
    if rest.last() != Some(&b'Z') {
        return Err(bad);
    }
    let field = |i: usize| digits(rest.get(i..i + 2).ok_or(bad)?);
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad),
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return Err(bad);
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `secs` since the epoch as an RFC 3339 UTC timestamp (`2026-12-01T07:37:05Z`), for
/// messages: the inverse of [`days_from_civil`] (Howard Hinnant's `civil_from_days`).
pub(crate) fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_the_inverse_of_days_from_civil() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_110_625), "2026-12-01T07:37:05Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        for (y, m, d) in [
            (1950, 1, 1),
            (2000, 2, 29),
            (2024, 12, 31),
            (2049, 12, 31),
            (9999, 12, 31),
        ] {
            let secs = days_from_civil(y, m, d) * 86_400 + 3_723;
            assert_eq!(rfc3339(secs), format!("{y:04}-{m:02}-{d:02}T01:02:03Z"));
        }
    }

    #[test]
    fn lengths_must_be_shortest_and_definite() {
        assert!(Reader::new(&[0x04, 0x01, 0xaa]).read().is_ok());
        assert_eq!(
            Reader::new(&[0x04, 0x81, 0x01, 0xaa]).read().unwrap_err(),
            DerError("length is not in its shortest form")
        );
        assert!(Reader::new(&[0x04, 0x80, 0x00, 0x00]).read().is_err());
        assert!(Reader::new(&[0x04, 0x82, 0x00, 0x81]).read().is_err());
        assert!(Reader::new(&[0x04, 0x05, 0x00]).read().is_err());
        assert!(Reader::new(&[0x1f, 0x01, 0x00]).read().is_err());
        assert!(Reader::new(&[0x04, 0x85, 1, 1, 1, 1, 1]).read().is_err());
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(Reader::new(&long).read().unwrap().content.len(), 0x80);
    }

    #[test]
    fn oids_print_dotted() {
        assert_eq!(oid_string(&[0x55, 0x04, 0x03]), "2.5.4.3");
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
            "1.2.840.113549.1.1.1"
        );
        assert_eq!(oid_string(&[0x88, 0x37, 0x01]), "2.999.1");
        // The pre-formatted table agrees with the general path.
        for (bytes, dotted) in COMMON_OIDS {
            let mut general = bytes.to_vec();
            general.push(0x01);
            assert_eq!(oid_string(&general), format!("{dotted}.1"));
            assert_eq!(oid_string(bytes), dotted);
        }
        assert!(oid(&[0x80, 0x01]).is_err());
        assert!(oid(&[0x55, 0x84]).is_err());
        assert!(oid(&[]).is_err());
    }

    #[test]
    fn times_are_strict() {
        let t = |tag, s: &str| {
            time(&Tlv {
                tag,
                content: s.as_bytes(),
                raw: &[],
            })
        };
        assert_eq!(t(UTC_TIME, "700101000000Z"), Ok(0));
        assert_eq!(t(UTC_TIME, "491231235959Z"), Ok(2_524_607_999));
        assert_eq!(t(GENERALIZED_TIME, "20000229120000Z"), Ok(951_825_600));
        assert_eq!(t(GENERALIZED_TIME, "99991231235959Z"), Ok(253_402_300_799));
        for bad in [
            "19000229000000Z",
            "20230230000000Z",
            "20231301000000Z",
            "20230101240000Z",
            "20230101000060Z",
            "2023010100000Z",
            "20230101000000+",
            "2023010100000aZ",
        ] {
            assert!(t(GENERALIZED_TIME, bad).is_err(), "{bad}");
        }
        assert!(t(UTC_TIME, "7001010000Z").is_err());
        assert!(t(OCTET_STRING, "700101000000Z").is_err());
    }

    #[test]
    fn integers_and_bits() {
        assert_eq!(small_unsigned(&[0x00, 0x80]), Ok(128));
        assert!(small_unsigned(&[0x00, 0x01]).is_err());
        assert!(small_unsigned(&[0xff]).is_err());
        assert!(small_unsigned(&[1, 0, 0, 0, 0]).is_err());
        assert_eq!(bit_string(&[0x05, 0xa0]), Ok(&[0xa0u8][..]));
        assert!(bit_string(&[0x05, 0xa1]).is_err());
        assert!(bit_string(&[0x08, 0x00]).is_err());
        assert!(bit_string(&[0x01]).is_err());
        assert_eq!(boolean(&[0xff]), Ok(true));
        assert!(boolean(&[0x01]).is_err());
    }
}
