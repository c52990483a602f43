//! The scanner: a byte-level mirror of the 1.x `models/points.go` state machine.
//!
//! Positions are byte offsets into one line. Every token boundary is at an ASCII delimiter or
//! the end of the line, so slicing the (already UTF-8 checked) line there is always valid; the
//! slices still go through `str::get` so that a mistake here is an error, never a panic.

use std::borrow::Cow;

use crate::{
    FieldValue, LineError, MAX_KEY_LENGTH, MAX_NANO_TIME, MIN_NANO_TIME, ParseErrorKind as E,
    ParseOptions, Point,
};

type Scan<T> = Result<T, E>;

/// Splits a body into lines as 1.x `scanLine` does: a newline inside a quoted string field
/// value does not end the line. The newline itself is not part of the line.
pub fn split_lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= buf.len() {
            return None;
        }
        let end = scan_line(buf, pos);
        let line = &buf[pos..end];
        pos = end + 1;
        Some(line)
    })
}

fn scan_line(buf: &[u8], mut i: usize) -> usize {
    let mut quoted = false;
    let mut fields = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    while i < buf.len() {
        if buf[i] == b'\\' && i + 2 < buf.len() {
            i += 2;
            continue;
        }
        if buf[i] == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && buf[i] == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && buf[i] == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if buf[i] == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if buf[i] == b'\n' && !quoted {
            break;
        }
        i += 1;
    }
    i
}

fn skip_whitespace(buf: &[u8], mut i: usize) -> usize {
    while i < buf.len() && matches!(buf[i], b' ' | b'\t' | 0) {
        i += 1;
    }
    i
}

/// Parses one line (as given by [`split_lines`]). Blank lines and comments give `Ok(None)`.
pub fn parse_line<'a>(raw: &'a [u8], opts: &ParseOptions) -> Result<Option<Point<'a>>, LineError> {
    let start = skip_whitespace(raw, 0);
    if start >= raw.len() || raw[start] == b'#' {
        return Ok(None);
    }
    let mut block = &raw[start..];
    if block.last() == Some(&b'\n') {
        block = &block[..block.len() - 1];
    }
    let line = match std::str::from_utf8(block) {
        Ok(s) => s,
        Err(_) => {
            return Err(LineError {
                line: String::from_utf8_lossy(block).into_owned(),
                kind: E::InvalidUtf8,
            });
        }
    };
    parse_point(line, opts).map(Some).map_err(|kind| LineError {
        line: line.to_string(),
        kind,
    })
}

fn slice(line: &str, a: usize, b: usize) -> Scan<&str> {
    line.get(a..b).ok_or(E::InvalidUtf8)
}

fn parse_point<'a>(line: &'a str, opts: &ParseOptions) -> Scan<Point<'a>> {
    let buf = line.as_bytes();
    let key = scan_key(buf)?;
    if key.end == 0 {
        return Err(E::MissingMeasurement);
    }
    if key.end > MAX_KEY_LENGTH {
        return Err(E::MaxKeyLength(key.end));
    }
    let (fields_start, fields_end) = scan_fields(buf, key.end, opts.allow_unsigned)?;
    if fields_end == fields_start {
        return Err(E::MissingFields);
    }
    let fields = split_fields(line, fields_start, fields_end)?;
    for (k, _) in &fields {
        let sz = key.end + 4 + k.len();
        if sz > MAX_KEY_LENGTH {
            return Err(E::MaxKeyLength(sz));
        }
    }
    let (ts_start, ts_end) = scan_time(buf, fields_end)?;
    let time = if ts_start == ts_end {
        opts.precision.truncate(opts.default_time)
    } else {
        let text = slice(line, ts_start, ts_end)?;
        let ts = parse_go_int(text)?;
        let nanos = ts
            .checked_mul(opts.precision.multiplier())
            .ok_or(E::TimeOutOfRange)?;
        if !(MIN_NANO_TIME..=MAX_NANO_TIME).contains(&nanos) {
            return Err(E::TimeOutOfRange);
        }
        if buf[ts_end..].iter().any(|&b| b != b' ') {
            return Err(E::InvalidPoint);
        }
        nanos
    };

    let measurement = unescape(slice(line, 0, key.measurement_end)?, b", ");
    let mut tags = Vec::with_capacity(key.tags.len());
    for &(ks, ke, vs, ve) in &key.tags {
        tags.push((
            unescape(slice(line, ks, ke)?, b", ="),
            unescape(slice(line, vs, ve)?, b", ="),
        ));
    }
    // The sort is the series key order; equal keys are then neighbours. (1.x compares the raw,
    // escaped keys; two keys are equal escaped exactly when they are equal unescaped, since an
    // unescaped comma, space or equals sign cannot occur in a key.)
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    if tags.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(E::DuplicateTags);
    }
    Ok(Point {
        measurement,
        tags,
        fields,
        time,
    })
}

struct Key {
    /// End of the measurement + tags block (the series key as written).
    end: usize,
    measurement_end: usize,
    /// (key start, key end, value start, value end) per tag.
    tags: Vec<(usize, usize, usize, usize)>,
}

fn scan_key(buf: &[u8]) -> Scan<Key> {
    // scanMeasurement
    let mut i = 0;
    if buf.is_empty() || buf[0] == b',' {
        return Err(E::MissingMeasurement);
    }
    let has_tags;
    loop {
        i += 1;
        if i >= buf.len() {
            return Err(E::MissingFields);
        }
        if buf[i - 1] == b'\\' {
            continue;
        }
        if buf[i] == b',' {
            has_tags = true;
            break;
        }
        if buf[i] == b' ' {
            has_tags = false;
            break;
        }
    }
    let measurement_end = i;
    // One tag per comma before the first space: one allocation (an escaped space only
    // under-counts, which costs a reallocation).
    let mut tags = if has_tags {
        Vec::with_capacity(
            buf.iter()
                .take_while(|&&b| b != b' ')
                .filter(|&&b| b == b',')
                .count(),
        )
    } else {
        Vec::new()
    };
    if has_tags {
        i += 1;
        loop {
            // scanTagsKey
            let ks = i;
            if i >= buf.len() || matches!(buf[i], b' ' | b',' | b'=') {
                return Err(E::MissingTagKey);
            }
            let ke = loop {
                i += 1;
                if i >= buf.len() || (matches!(buf[i], b' ' | b',') && buf[i - 1] != b'\\') {
                    return Err(E::MissingTagValue);
                }
                if buf[i] == b'=' && buf[i - 1] != b'\\' {
                    break i;
                }
            };
            i += 1;
            // scanTagsValue
            let vs = i;
            if i >= buf.len() || matches!(buf[i], b',' | b' ') {
                return Err(E::MissingTagValue);
            }
            let more = loop {
                i += 1;
                if i >= buf.len() {
                    return Err(E::MissingFields);
                }
                if buf[i] == b'=' && buf[i - 1] != b'\\' {
                    return Err(E::InvalidTagFormat);
                }
                if buf[i] == b',' && buf[i - 1] != b'\\' {
                    break true;
                }
                if buf[i] == b' ' && buf[i - 1] != b'\\' {
                    break false;
                }
            };
            tags.push((ks, ke, vs, i));
            if !more {
                break;
            }
            i += 1;
        }
    }
    Ok(Key {
        end: i,
        measurement_end,
        tags,
    })
}

fn is_numeric(b: u8) -> bool {
    b.is_ascii_digit() || b == b'.'
}

/// scanFields: validates the field block and returns its bounds.
fn scan_fields(buf: &[u8], from: usize, allow_unsigned: bool) -> Scan<(usize, usize)> {
    let start = skip_whitespace(buf, from);
    let mut i = start;
    let mut quoted = false;
    let mut equals = 0usize;
    let mut commas = 0usize;
    while i < buf.len() {
        if buf[i] == b'\\' && i + 1 < buf.len() {
            i += 2;
            continue;
        }
        if buf[i] == b'"' && equals > commas {
            quoted = !quoted;
            i += 1;
            continue;
        }
        if buf[i] == b'=' && !quoted {
            equals += 1;
            let before = buf[i - 1];
            let before2 = if i >= 2 { buf[i - 2] } else { 0 };
            if (before == b' ' || before == b',') && before2 != b'\\' {
                return Err(E::MissingFieldKey);
            }
            if i + 1 >= buf.len() {
                return Err(E::MissingFieldValue);
            }
            let next = buf[i + 1];
            if next == b',' || next == b' ' {
                return Err(E::MissingFieldValue);
            }
            if is_numeric(next) || matches!(next, b'-' | b'N' | b'n') {
                i = scan_number(buf, i + 1, allow_unsigned)?;
                continue;
            }
            if next != b'"' {
                i = scan_boolean(buf, i + 1)?;
                continue;
            }
        }
        if buf[i] == b',' && !quoted {
            commas += 1;
        }
        if buf[i] == b' ' && !quoted {
            break;
        }
        i += 1;
    }
    if quoted {
        return Err(E::UnbalancedQuotes);
    }
    if equals == 0 || commas + 1 != equals {
        return Err(E::InvalidFieldFormat);
    }
    Ok((start, i))
}

fn scan_number(buf: &[u8], mut i: usize, allow_unsigned: bool) -> Scan<usize> {
    let start = i;
    let (mut is_int, mut is_unsigned, mut decimal, mut scientific) = (false, false, false, false);
    if buf[i] == b'-' {
        i += 1;
        if i == buf.len() {
            return Err(E::InvalidNumber);
        }
    }
    while i < buf.len() {
        let c = buf[i];
        if c == b',' || c == b' ' {
            break;
        }
        if c == b'i' && i > start && !(is_int || is_unsigned) {
            is_int = true;
            i += 1;
            continue;
        } else if c == b'u' && i > start && !(is_int || is_unsigned) {
            is_unsigned = true;
            i += 1;
            continue;
        }
        if c == b'.' {
            if decimal {
                return Err(E::InvalidNumber);
            }
            decimal = true;
        }
        if i > start && (c == b'e' || c == b'E') {
            scientific = true;
            i += 1;
            continue;
        }
        if (c == b'+' || c == b'-') && matches!(buf[i - 1], b'e' | b'E') {
            i += 1;
            continue;
        }
        if i + 2 < buf.len() && (c == b'N' || c == b'n') {
            return Err(E::InvalidNumber);
        }
        if !is_numeric(c) {
            return Err(E::InvalidNumber);
        }
        i += 1;
    }
    if (is_int || is_unsigned) && (decimal || scientific) {
        return Err(E::InvalidNumber);
    }
    let mut digits = (i - start) as isize;
    if is_int || is_unsigned {
        digits -= 1;
    }
    if decimal {
        digits -= 1;
    }
    if buf[start] == b'-' {
        digits -= 1;
    }
    if digits <= 0 {
        return Err(E::InvalidNumber);
    }
    if (is_int || is_unsigned) && !matches!(buf[i - 1], b'i' | b'u') {
        return Err(E::InvalidNumber);
    }
    if is_unsigned && !allow_unsigned {
        return Err(E::InvalidNumber);
    }
    Ok(i)
}

fn scan_boolean(buf: &[u8], mut i: usize) -> Scan<usize> {
    let start = i;
    if i < buf.len() && !matches!(buf[i], b't' | b'f' | b'T' | b'F') {
        return Err(E::InvalidBoolean);
    }
    i += 1;
    while i < buf.len() && buf[i] != b',' && buf[i] != b' ' {
        i += 1;
    }
    let word = &buf[start..i.min(buf.len())];
    if word.len() == 1 || parse_bool(word).is_some() {
        Ok(i)
    } else {
        Err(E::InvalidBoolean)
    }
}

fn parse_bool(word: &[u8]) -> Option<bool> {
    match word {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Some(true),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Some(false),
        _ => None,
    }
}

/// scanTime: the optional timestamp after the fields.
fn scan_time(buf: &[u8], from: usize) -> Scan<(usize, usize)> {
    let start = skip_whitespace(buf, from);
    let mut i = start;
    while i < buf.len() {
        let c = buf[i];
        if c == b'\n' || c == b' ' {
            break;
        }
        if i == start && c == b'-' {
            i += 1;
            continue;
        }
        if !c.is_ascii_digit() {
            return Err(E::BadTimestamp);
        }
        i += 1;
    }
    Ok((start, i))
}

/// `strconv.ParseInt(s, 10, 64)` with Go's error texts.
fn parse_go_int(s: &str) -> Scan<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::TimestampSyntax(s.to_string(), "invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| E::TimestampSyntax(s.to_string(), "value out of range"))
}

/// Splits the validated field block into unique keys and typed values (later duplicates win).
fn split_fields<'a>(
    line: &'a str,
    start: usize,
    end: usize,
) -> Scan<Vec<(Cow<'a, str>, FieldValue<'a>)>> {
    let buf = line.as_bytes();
    // One allocation: at most one field per comma (commas inside strings only over-count).
    let commas = buf[start..end].iter().filter(|&&b| b == b',').count();
    let mut out: Vec<(Cow<'a, str>, FieldValue<'a>)> = Vec::with_capacity(commas + 1);
    let mut i = start;
    while i < end {
        // key, up to an unescaped '='
        let ks = i;
        while i < end && buf[i] != b'=' {
            if buf[i] == b'\\' {
                i += 1;
            }
            i += 1;
        }
        let key = unescape(slice(line, ks, i.min(end))?, b", =");
        if key.is_empty() {
            // 1.x's check looks only for a space before '='; NUL bytes (skipped as whitespace)
            // could sneak an empty key past it.
            return Err(E::MissingFieldKey);
        }
        i += 1; // '='
        if i >= end {
            return Err(E::MissingFieldValue);
        }
        let value;
        if buf[i] == b'"' {
            let vs = i + 1;
            i += 1;
            while i < end && buf[i] != b'"' {
                if buf[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            if i >= end {
                return Err(E::UnbalancedQuotes);
            }
            value = FieldValue::String(unescape_string(slice(line, vs, i)?));
            i += 1;
        } else {
            let vs = i;
            while i < end && buf[i] != b',' {
                i += 1;
            }
            value = parse_value(slice(line, vs, i)?)?;
        }
        if i < end && buf[i] != b',' {
            return Err(E::InvalidFieldFormat);
        }
        i += 1; // ','
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

fn parse_value(text: &str) -> Scan<FieldValue<'static>> {
    let b = text.as_bytes();
    let Some(&first) = b.first() else {
        return Err(E::MissingFieldValue);
    };
    if !(is_numeric(first) || first == b'-' || first == b'N' || first == b'n') {
        return parse_bool(b)
            .map(FieldValue::Boolean)
            .ok_or(E::InvalidBoolean);
    }
    if let Some(digits) = text.strip_suffix('i') {
        return digits
            .parse::<i64>()
            .map(FieldValue::Integer)
            .map_err(|_| E::IntegerOutOfRange(digits.to_string()));
    }
    if let Some(digits) = text.strip_suffix('u') {
        return digits
            .parse::<u64>()
            .map(FieldValue::UInteger)
            .map_err(|_| E::UnsignedOutOfRange(digits.to_string()));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(FieldValue::Float(v)),
        _ => Err(E::InvalidFloat),
    }
}

/// Removes the backslash before any of `specials`; other backslashes stay, as in 1.x.
fn unescape<'a>(s: &'a str, specials: &[u8]) -> Cow<'a, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\\' && specials.contains(&b[i + 1]) {
            out.push_str(&s[last..i]);
            last = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[last..]);
    Cow::Owned(out)
}

/// String field values: `\"` is a quote and `\\` a backslash; other backslashes stay.
fn unescape_string(s: &str) -> Cow<'_, str> {
    unescape(s, b"\"\\")
}
