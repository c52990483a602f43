//! The formatter: canonical line protocol (tags sorted, nanosecond timestamp) that
//! [`crate::parse_line`] reads back to the same point.

use std::fmt::Write;

use crate::{FieldValue, Point};

fn escape_into(out: &mut String, s: &str, specials: &[char]) {
    // Every special is ASCII, so bytes can be searched; most names need no escaping at all.
    let special = |b: u8| specials.iter().any(|c| *c as u32 == u32::from(b));
    let mut rest = s;
    while let Some(i) = rest.bytes().position(special) {
        out.push_str(&rest[..i]);
        out.push('\\');
        out.push_str(&rest[i..i + 1]);
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Escapes a measurement name (commas and spaces).
pub fn escape_measurement(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s, &[',', ' ']);
    out
}

/// Escapes a tag key or value (commas, spaces and equals signs).
pub fn escape_tag(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s, &[',', ' ', '=']);
    out
}

/// Escapes a field key (commas, spaces and equals signs).
pub fn escape_field_key(s: &str) -> String {
    escape_tag(s)
}

/// Appends one point as a line (without the newline).
pub fn format_point_into(out: &mut String, p: &Point<'_>) {
    escape_into(out, &p.measurement, &[',', ' ']);
    for (k, v) in &p.tags {
        out.push(',');
        escape_into(out, k, &[',', ' ', '=']);
        out.push('=');
        escape_into(out, v, &[',', ' ', '=']);
    }
    for (i, (k, v)) in p.fields.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ',' });
        escape_into(out, k, &[',', ' ', '=']);
        out.push('=');
        // Writing to a String cannot fail.
        let _ = match v {
            // As 1.x writes a float (Go's `'f', -1`: shortest, never an exponent; `1.0` is
            // `1`, which line protocol reads as a float).
            FieldValue::Float(f) => write!(out, "{f}"),
            FieldValue::Integer(n) => write!(out, "{n}i"),
            FieldValue::UInteger(n) => write!(out, "{n}u"),
            FieldValue::Boolean(b) => write!(out, "{b}"),
            FieldValue::String(s) => {
                out.push('"');
                escape_into(out, s, &['"', '\\']);
                out.push('"');
                Ok(())
            }
        };
    }
    let _ = write!(out, " {}", p.time);
}

/// One point as a line (without the newline).
pub fn format_point(p: &Point<'_>) -> String {
    let mut out = String::with_capacity(64);
    format_point_into(&mut out, p);
    out
}
