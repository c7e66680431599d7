//! Turning the ways certificates travel (PEM, DER, URL-escaped PEM from nginx or AWS ALB,
//! bare base64 DER from Traefik) into DER bytes.
//!
//! Every function here is total: garbage, truncated input and oversized input give
//! [`CertificateError::BadEncoding`] (`cert.bad_encoding`), never a panic. Inputs are
//! size-capped before any work is done, so a hostile header cannot make us decode megabytes.
//!
//! Decoding checks the outer DER framing only (one complete `SEQUENCE`, nothing after
//! it); the certificate's contents are judged by [`TrustStore::verify`](super::TrustStore::verify).

use base64::Engine as _;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use super::CertificateError;

/// Largest single DER certificate or CRL accepted (64 KiB). Real client certificates are
/// 0.5-4 KiB; the cap bounds the work a hostile input can cause.
pub const MAX_CERT_BYTES: usize = 64 * 1024;

/// Largest encoded input (a PEM bundle, an escaped header) accepted (2 MiB, room for a
/// public CA bundle several times over).
pub const MAX_INPUT_BYTES: usize = 2 * 1024 * 1024;

/// Largest number of certificates in one decoded bundle.
pub const MAX_BUNDLE_CERTS: usize = 4096;

fn check_input_size(what: &str, input: &[u8]) -> Result<(), CertificateError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(CertificateError::bad_encoding(
            what,
            format!(
                "input is {} bytes, more than the {} byte cap",
                input.len(),
                MAX_INPUT_BYTES
            ),
        ));
    }
    Ok(())
}

/// Checks that `der` is exactly one DER `SEQUENCE` (definite length, nothing trailing) of
/// at most [`MAX_CERT_BYTES`].
pub(crate) fn check_der_frame(what: &str, der: &[u8]) -> Result<(), CertificateError> {
    let bad = |reason: &str| Err(CertificateError::bad_encoding(what, reason));
    if der.is_empty() {
        return bad("input is empty");
    }
    if der.len() > MAX_CERT_BYTES {
        return Err(CertificateError::bad_encoding(
            what,
            format!(
                "DER is {} bytes, more than the {} byte cap",
                der.len(),
                MAX_CERT_BYTES
            ),
        ));
    }
    let (tag, len_byte) = match der {
        [tag, len_byte, ..] => (*tag, *len_byte),
        _ => return bad("truncated DER header"),
    };
    if tag != 0x30 {
        return bad("does not start with a DER SEQUENCE");
    }
    let (header, body_len) = if len_byte < 0x80 {
        (2usize, usize::from(len_byte))
    } else {
        let n = usize::from(len_byte & 0x7f);
        if n == 0 || n > 3 {
            return bad("unsupported DER length encoding");
        }
        let Some(bytes) = der.get(2..2 + n) else {
            return bad("truncated DER length");
        };
        if bytes.first() == Some(&0) {
            return bad("non-minimal DER length");
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        if len < 0x80 {
            return bad("non-minimal DER length");
        }
        (2 + n, len)
    };
    match (header + body_len).cmp(&der.len()) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Greater => bad("truncated: DER length runs past the end of the input"),
        std::cmp::Ordering::Less => bad("trailing bytes after the DER SEQUENCE"),
    }
}

/// Whether `input` is DER: one `SEQUENCE` in the long length form (`0x30 0x81..=0x84`,
/// minimal) whose length covers exactly the rest of the input. Every real certificate and
/// CRL is longer than 127 bytes, so this never mistakes text for DER: its second byte is
/// not ASCII, so a file name such as `0ca.pem` or PEM text that starts with `0` is not DER.
///
/// ```
/// use portcullis::identity::decode::is_der;
/// let mut der = vec![0x30, 0x81, 0x80];
/// der.resize(3 + 0x80, 0);
/// assert!(is_der(&der));
/// assert!(!is_der(b"0ca.pem"));
/// assert!(!is_der(&der[..100])); // truncated
/// ```
pub fn is_der(input: &[u8]) -> bool {
    let (len_byte, rest) = match input {
        [0x30, len_byte, rest @ ..] => (*len_byte, rest),
        _ => return false,
    };
    let n = usize::from(len_byte & 0x7f);
    if len_byte & 0x80 == 0 || !(1..=4).contains(&n) {
        return false;
    }
    let Some((len_bytes, body)) = rest.split_at_checked(n) else {
        return false;
    };
    if len_bytes.first() == Some(&0) {
        return false;
    }
    let len = len_bytes
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    len >= 0x80 && u64::try_from(body.len()).is_ok_and(|b| b == len)
}

/// How a configured certificate or CRL input is spelled, by [`input_form`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputForm {
    /// DER bytes ([`is_der`], or binary that starts as a DER `SEQUENCE`: decoding names
    /// the DER fault).
    Der,
    /// PEM text (it holds a `-----BEGIN` line).
    Pem,
    /// Neither: one short line of text, so a file name.
    Path,
}

/// Decides whether a configured input (the Ruby `TrustStore.new(ca:)` strings) is DER, PEM
/// or a file name; `None` when it is none of them (long or multi-line text without a PEM
/// block, NUL bytes). One rule for every binding.
///
/// ```
/// use portcullis::identity::decode::{input_form, InputForm};
/// assert_eq!(input_form(b"0ca.pem"), Some(InputForm::Path));
/// assert_eq!(input_form(b"config/ca.pem"), Some(InputForm::Path));
/// assert_eq!(input_form(b"0\n-----BEGIN CERTIFICATE-----\n"), Some(InputForm::Pem));
/// assert_eq!(input_form(&[0x30, 0x82, 0x01]), Some(InputForm::Der)); // broken DER is DER
/// assert_eq!(input_form(b"a\nb"), None);
/// ```
pub fn input_form(input: &[u8]) -> Option<InputForm> {
    if is_der(input) {
        return Some(InputForm::Der);
    }
    if contains(input, b"-----BEGIN") {
        return Some(InputForm::Pem);
    }
    let Ok(text) = std::str::from_utf8(input) else {
        // Binary: DER if it starts like DER (decoding then says what is wrong with it).
        return (input.first() == Some(&0x30)).then_some(InputForm::Der);
    };
    let one_line = !text.is_empty()
        && text.len() < 4096
        && !text.chars().any(|c| c == '\0' || c == '\n' || c == '\r');
    one_line.then_some(InputForm::Path)
}

/// DER decoding applies: well-formed DER, or input that starts as DER and has no PEM block
/// (so the DER decoder explains the fault); PEM text starting with `0` is PEM.
fn treat_as_der(input: &[u8]) -> bool {
    is_der(input) || (input.first() == Some(&0x30) && !contains(input, b"-----BEGIN"))
}

fn pem_error(what: &str, err: &pem::Error) -> CertificateError {
    let reason = match err {
        pem::Error::MissingSectionEnd { .. } => "PEM block has no END line".to_owned(),
        pem::Error::IllegalSectionStart { .. } => "malformed PEM BEGIN line".to_owned(),
        pem::Error::Base64Decode(_) => "PEM body is not valid base64".to_owned(),
        pem::Error::NoItemsFound => "no PEM block found".to_owned(),
        other => format!("malformed PEM ({other:?})"),
    };
    CertificateError::bad_encoding(what, reason)
}

/// Decodes every `CERTIFICATE` block of a PEM text, in order. Other blocks (keys,
/// parameters) are skipped; no certificate at all is an error.
///
/// ```
/// use portcullis::identity::decode::decode_pem_certificates;
/// let err = decode_pem_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA").unwrap_err();
/// assert_eq!(portcullis::ErrorCode::code(&err), "cert.bad_encoding");
/// assert!(decode_pem_certificates(b"").is_err());
/// ```
pub fn decode_pem_certificates(pem: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    const WHAT: &str = "PEM certificate";
    check_input_size(WHAT, pem)?;
    let mut out = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem) {
        let der = item.map_err(|e| pem_error(WHAT, &e))?;
        check_der_frame(WHAT, der.as_ref())?;
        if out.len() >= MAX_BUNDLE_CERTS {
            return Err(CertificateError::bad_encoding(
                WHAT,
                format!("more than {MAX_BUNDLE_CERTS} certificates"),
            ));
        }
        out.push(der.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(CertificateError::bad_encoding(
            WHAT,
            "no -----BEGIN CERTIFICATE----- block found",
        ));
    }
    Ok(out)
}

/// What to say when one certificate was expected and `found` were given: a bundle (leaf
/// plus intermediates) goes in two parts, the leaf first and the rest as the chain.
fn one_certificate_expected(found: usize) -> String {
    if found > 1 {
        format!("expected one certificate, found {found}; pass the leaf alone and the rest in chain: (Ruby) / the chain argument (Rust)")
    } else {
        "expected one certificate, found none".to_owned()
    }
}

/// Decodes exactly one PEM `CERTIFICATE` block (the first; further certificate blocks are
/// an error, since a single certificate was expected).
///
/// ```
/// use portcullis::identity::decode::decode_pem_certificate;
/// assert!(decode_pem_certificate(b"hello").is_err());
/// ```
pub fn decode_pem_certificate(pem: &[u8]) -> Result<Vec<u8>, CertificateError> {
    let mut certs = decode_pem_certificates(pem)?;
    if certs.len() != 1 {
        return Err(CertificateError::bad_encoding(
            "PEM certificate",
            one_certificate_expected(certs.len()),
        ));
    }
    certs
        .pop()
        .ok_or_else(|| CertificateError::bad_encoding("PEM certificate", "empty"))
}

/// Checks that `der` is one complete DER certificate frame and returns it.
///
/// ```
/// use portcullis::identity::decode::decode_der;
/// assert!(decode_der(&[0x30, 0x03, 0x02, 0x01, 0x01]).is_ok()); // framing only
/// assert!(decode_der(&[0x30, 0x05, 0x02]).is_err());             // truncated
/// assert!(decode_der(b"").is_err());
/// ```
pub fn decode_der(der: &[u8]) -> Result<Vec<u8>, CertificateError> {
    check_der_frame("DER certificate", der)?;
    Ok(der.to_vec())
}

/// Decodes a URL-escaped PEM certificate, as nginx's `$ssl_client_escaped_cert` and AWS
/// ALB's `X-Amzn-Mtls-Clientcert` send it. Returns every certificate it contains (ALB
/// sends the leaf followed by its chain).
///
/// ```
/// use portcullis::identity::decode::decode_url_escaped_pem;
/// assert!(decode_url_escaped_pem("-----BEGIN%20CERTIFICATE-----%0AAA%3D%3D").is_err());
/// ```
pub fn decode_url_escaped_pem(escaped: &str) -> Result<Vec<Vec<u8>>, CertificateError> {
    const WHAT: &str = "URL-escaped PEM certificate";
    check_input_size(WHAT, escaped.as_bytes())?;
    // `+` is literal base64 in these headers (nginx escapes only what it must), so this is
    // percent-decoding, not form-decoding.
    let pem = percent_decode_strict(escaped)
        .map_err(|reason| CertificateError::bad_encoding(WHAT, reason))?;
    decode_pem_certificates(&pem).map_err(|e| match e {
        CertificateError::BadEncoding { reason, .. } => {
            CertificateError::bad_encoding(WHAT, reason)
        }
        other => other,
    })
}

/// Decodes a bare base64 DER certificate (Traefik's `X-Forwarded-Tls-Client-Cert`, RFC 9440
/// `Client-Cert` without the colons). Whitespace is ignored; standard or URL-safe alphabet,
/// padded or not.
///
/// ```
/// use portcullis::identity::decode::decode_base64_der;
/// assert_eq!(decode_base64_der("MAMCAQE=").unwrap(), vec![0x30, 0x03, 0x02, 0x01, 0x01]);
/// assert!(decode_base64_der("!!!").is_err());
/// ```
pub fn decode_base64_der(b64: &str) -> Result<Vec<u8>, CertificateError> {
    const WHAT: &str = "base64 DER certificate";
    check_input_size(WHAT, b64.as_bytes())?;
    let compact: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let compact = compact.trim_end_matches('=');
    if compact.len() > MAX_CERT_BYTES / 3 * 4 + 4 {
        return Err(CertificateError::bad_encoding(
            WHAT,
            format!("more than {MAX_CERT_BYTES} bytes once decoded"),
        ));
    }
    let engine = if compact.contains(['-', '_']) {
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
    } else {
        &base64::engine::general_purpose::STANDARD_NO_PAD
    };
    let der = engine
        .decode(compact)
        .map_err(|e| CertificateError::bad_encoding(WHAT, format!("invalid base64 ({e})")))?;
    check_der_frame(WHAT, &der)?;
    Ok(der)
}

/// Decodes one certificate in whatever form it came: PEM, DER, URL-escaped PEM, or bare
/// base64 DER. Use this when the caller may hand over any of them (the Ruby binding does).
///
/// ```
/// use portcullis::identity::decode::decode_certificate;
/// assert!(decode_certificate(&[0u8; 32]).is_err());
/// assert!(decode_certificate(b"MAMCAQE=").is_ok()); // base64 of a minimal DER frame
/// ```
pub fn decode_certificate(input: &[u8]) -> Result<Vec<u8>, CertificateError> {
    let mut all = decode_certificates(input)?;
    if all.len() != 1 {
        return Err(CertificateError::bad_encoding(
            "certificate",
            one_certificate_expected(all.len()),
        ));
    }
    all.pop()
        .ok_or_else(|| CertificateError::bad_encoding("certificate", "empty"))
}

/// Like [`decode_certificate`], but a PEM (or URL-escaped PEM) input may hold several
/// certificates, returned in order.
///
/// ```
/// use portcullis::identity::decode::decode_certificates;
/// assert_eq!(decode_certificates(&[0x30, 0x00]).unwrap().len(), 1);
/// ```
pub fn decode_certificates(input: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    check_input_size("certificate", input)?;
    if treat_as_der(input) {
        return decode_der(input).map(|d| vec![d]);
    }
    let trimmed = trim_ascii(input);
    if contains(trimmed, b"-----BEGIN%20") || contains(trimmed, b"%2D%2D%2D%2D%2DBEGIN") {
        let text = std::str::from_utf8(trimmed).map_err(|_| {
            CertificateError::bad_encoding("certificate", "escaped PEM is not ASCII")
        })?;
        return decode_url_escaped_pem(text);
    }
    if contains(trimmed, b"-----BEGIN") {
        return decode_pem_certificates(trimmed);
    }
    if trimmed.is_empty() {
        return Err(CertificateError::bad_encoding(
            "certificate",
            "input is empty",
        ));
    }
    let text = std::str::from_utf8(trimmed).map_err(|_| {
        CertificateError::bad_encoding("certificate", "neither PEM, DER, nor base64 DER")
    })?;
    decode_base64_der(text).map(|d| vec![d])
}

/// Decodes certificate revocation lists: PEM (`X509 CRL` blocks, one or many) or one DER CRL.
///
/// ```
/// use portcullis::identity::decode::decode_crls;
/// assert!(decode_crls(b"-----BEGIN X509 CRL-----\n!!\n-----END X509 CRL-----\n").is_err());
/// ```
pub fn decode_crls(input: &[u8]) -> Result<Vec<Vec<u8>>, CertificateError> {
    const WHAT: &str = "CRL";
    check_input_size(WHAT, input)?;
    if treat_as_der(input) {
        check_der_frame(WHAT, input)?;
        return Ok(vec![input.to_vec()]);
    }
    let mut out = Vec::new();
    for item in CertificateRevocationListDer::pem_slice_iter(input) {
        let der = item.map_err(|e| pem_error(WHAT, &e))?;
        check_der_frame(WHAT, der.as_ref())?;
        if out.len() >= MAX_BUNDLE_CERTS {
            return Err(CertificateError::bad_encoding(
                WHAT,
                format!("more than {MAX_BUNDLE_CERTS} CRLs"),
            ));
        }
        out.push(der.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(CertificateError::bad_encoding(
            WHAT,
            "no -----BEGIN X509 CRL----- block and not DER",
        ));
    }
    Ok(out)
}

/// Strict URL-unescaping: every `%` must start a two-hex-digit escape (`%ZZ`, `%2`, a
/// trailing `%` are errors); `+` stays `+` (ALB leaves `+`, `/` and `=` unescaped).
/// A proxy that wrote the header never produces a bad escape, so one means forgery or
/// corruption, not something to repair.
///
/// ```
/// use portcullis::identity::decode::percent_decode_strict;
/// assert_eq!(percent_decode_strict("a%2Bb+c").unwrap(), b"a+b+c");
/// assert!(percent_decode_strict("%ZZ").is_err());
/// assert!(percent_decode_strict("trailing%2").is_err());
/// ```
pub fn percent_decode_strict(s: &str) -> Result<Vec<u8>, String> {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            match (
                bytes.get(i + 1).and_then(|c| hex(*c)),
                bytes.get(i + 2).and_then(|c| hex(*c)),
            ) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(format!("invalid % escape at byte {i}")),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    b.get(start..end).unwrap_or(&[])
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn garbage_is_bad_encoding_never_a_panic() {
        let mut seed: u32 = 7;
        for len in [0usize, 1, 2, 3, 5, 17, 100, 1000, 70_000] {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            for f in [decode_certificate, decode_der] {
                if let Err(e) = f(&bytes) {
                    assert_eq!(e.code(), "cert.bad_encoding");
                }
            }
            assert!(decode_certificates(&bytes).is_err() || bytes.first() == Some(&0x30));
            let _ = decode_crls(&bytes);
            let text = String::from_utf8_lossy(&bytes);
            let _ = decode_url_escaped_pem(&text);
            let _ = decode_base64_der(&text);
        }
    }

    #[test]
    fn one_mebibyte_blob_is_refused() {
        let blob = vec![0x41u8; 1024 * 1024];
        let err = decode_certificate(&blob).unwrap_err();
        assert_eq!(err.code(), "cert.bad_encoding");
        let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        pem.extend(std::iter::repeat(b'A').take(1024 * 1024));
        pem.extend(b"\n-----END CERTIFICATE-----\n");
        assert_eq!(
            decode_pem_certificates(&pem).unwrap_err().code(),
            "cert.bad_encoding"
        );
        let too_big = vec![b'A'; MAX_INPUT_BYTES + 1];
        assert!(decode_certificates(&too_big).is_err());
    }

    #[test]
    fn der_framing() {
        assert!(check_der_frame("c", &[0x30, 0x81, 0x05]).is_err()); // non-minimal
        assert!(check_der_frame("c", &[0x30, 0x80]).is_err()); // indefinite
        assert!(check_der_frame("c", &[0x30, 0x00, 0x00]).is_err()); // trailing
        assert!(check_der_frame("c", &[0x31, 0x00]).is_err()); // not a SEQUENCE
        assert!(check_der_frame("c", &[0x30, 0x00]).is_ok());
    }
}
