//! The WAL entry codec: one write request's points, grouped by shard, in binary. It is the
//! payload format of a shard's points wherever they travel: the WAL stores exactly these
//! bytes, and a write sent to another owner of a shard carries them too.

use std::borrow::Cow;

use line_protocol::{FieldValue, ParseOptions, Point, Precision, parse_body};

use crate::error::WalError;

/// Entries as canonical line protocol, one string per shard (written before 0.2; still read).
const ENTRY_V1: u8 = 1;
/// Entries as binary points (see [`encode_entry`]).
const ENTRY_V2: u8 = 2;

/// The points of one request for one shard.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardWrite<'a> {
    pub shard_id: u64,
    pub points: Vec<Point<'a>>,
}

/// One WAL entry: one write request, decoded. Points borrow from the entry's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct WalEntry<'a> {
    pub database: Cow<'a, str>,
    pub rp: Cow<'a, str>,
    pub shards: Vec<ShardWrite<'a>>,
}

/// Encodes one request's points, grouped by shard, as a version-2 entry:
///
/// ```text
///   entry  = 2u8 database rp nshards:varint shard*
///   shard  = shard_id:u64 npoints:varint point*
///   point  = shape_ref:varint [shape if shape_ref = 0] tag_value:str* field_value* time:i64
///   shape  = measurement:str ntags:varint tag_key:str* nfields:varint (field_key:str type:u8)*
///   str    = len:varint utf8-bytes          numbers are little-endian
/// ```
///
/// A shape (measurement, tag keys, field keys and types) is written once per entry; later
/// points with the same shape refer to it by number (`shape_ref - 1`). Values are written as
/// they are held (a float is its 8 bytes), so nothing is formatted on the write path and
/// replay reads the numbers back bit for bit.
pub fn encode_entry(database: &str, rp: &str, shards: &[(u64, Vec<&Point<'_>>)]) -> Vec<u8> {
    let points: usize = shards.iter().map(|(_, p)| p.len()).sum();
    let mut out = Vec::with_capacity(16 + database.len() + rp.len() + points * 160);
    out.push(ENTRY_V2);
    put_str(&mut out, database);
    put_str(&mut out, rp);
    put_varint(&mut out, shards.len() as u64);
    // Shapes are numbered across the whole entry; each is represented by the first point
    // that had it. Only the most recent few are searched, so odd inputs cost no more than a
    // shape definition per point.
    let mut shapes: Vec<&Point<'_>> = Vec::new();
    let mut last = 0usize;
    for (shard_id, points) in shards {
        out.extend_from_slice(&shard_id.to_le_bytes());
        put_varint(&mut out, points.len() as u64);
        for p in points {
            let found = if shapes.get(last).is_some_and(|s| s.same_shape(p)) {
                Some(last)
            } else {
                let from = shapes.len().saturating_sub(SHAPE_SEARCH);
                (from..shapes.len())
                    .rev()
                    .find(|&i| shapes[i].same_shape(p))
            };
            match found {
                Some(i) => {
                    last = i;
                    put_varint(&mut out, i as u64 + 1);
                }
                None => {
                    out.push(0);
                    put_str(&mut out, &p.measurement);
                    put_varint(&mut out, p.tags.len() as u64);
                    for (k, _) in &p.tags {
                        put_str(&mut out, k);
                    }
                    put_varint(&mut out, p.fields.len() as u64);
                    for (k, v) in &p.fields {
                        put_str(&mut out, k);
                        out.push(type_code(v));
                    }
                    last = shapes.len();
                    shapes.push(p);
                }
            }
            for (_, v) in &p.tags {
                put_str(&mut out, v);
            }
            for (_, v) in &p.fields {
                match v {
                    FieldValue::Float(f) => out.extend_from_slice(&f.to_bits().to_le_bytes()),
                    FieldValue::Integer(i) => out.extend_from_slice(&i.to_le_bytes()),
                    FieldValue::UInteger(u) => out.extend_from_slice(&u.to_le_bytes()),
                    FieldValue::Boolean(b) => out.push(u8::from(*b)),
                    FieldValue::String(s) => put_str(&mut out, s),
                }
            }
            out.extend_from_slice(&p.time.to_le_bytes());
        }
    }
    out
}

/// How many of the most recent shapes the encoder compares a point with.
const SHAPE_SEARCH: usize = 16;

fn type_code(v: &FieldValue<'_>) -> u8 {
    match v {
        FieldValue::Float(_) => 0,
        FieldValue::Integer(_) => 1,
        FieldValue::UInteger(_) => 2,
        FieldValue::String(_) => 3,
        FieldValue::Boolean(_) => 4,
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A shape as decoded: the measurement, tag keys and typed field keys.
struct DecodedShape<'a> {
    measurement: &'a str,
    tags: Vec<&'a str>,
    fields: Vec<(&'a str, u8)>,
}

impl<'a> WalEntry<'a> {
    /// Decodes an entry of either version. Every length and count is checked against the
    /// bytes that are there, so a corrupt entry is an error, never a panic or a huge
    /// allocation.
    pub fn decode(buf: &'a [u8]) -> Result<Self, WalError> {
        let mut r = Reader { buf, pos: 0 };
        match r.take(1)?[0] {
            ENTRY_V1 => Self::decode_v1(r),
            ENTRY_V2 => Self::decode_v2(r),
            v => Err(WalError::Decode(format!("unknown entry version {v}"))),
        }
    }

    fn decode_v2(mut r: Reader<'a>) -> Result<Self, WalError> {
        let database = Cow::Borrowed(r.str()?);
        let rp = Cow::Borrowed(r.str()?);
        let nshards = r.count(9)?;
        let mut shapes: Vec<DecodedShape<'a>> = Vec::new();
        let mut shards = Vec::with_capacity(nshards);
        for _ in 0..nshards {
            let shard_id = r.u64()?;
            // Every point takes at least 9 bytes (a shape number and the time).
            let npoints = r.count(9)?;
            let mut points = Vec::with_capacity(npoints);
            for _ in 0..npoints {
                let shape_ref = r.varint()?;
                let shape = if shape_ref == 0 {
                    let measurement = r.str()?;
                    let ntags = r.count(1)?;
                    let tags = (0..ntags).map(|_| r.str()).collect::<Result<Vec<_>, _>>()?;
                    let nfields = r.count(2)?;
                    let fields = (0..nfields)
                        .map(|_| Ok((r.str()?, r.take(1)?[0])))
                        .collect::<Result<Vec<_>, WalError>>()?;
                    shapes.push(DecodedShape {
                        measurement,
                        tags,
                        fields,
                    });
                    &shapes[shapes.len() - 1]
                } else {
                    usize::try_from(shape_ref - 1)
                        .ok()
                        .and_then(|i| shapes.get(i))
                        .ok_or_else(|| {
                            WalError::Decode("point refers to an unknown shape".into())
                        })?
                };
                let mut tags = Vec::with_capacity(shape.tags.len());
                for k in &shape.tags {
                    tags.push((Cow::Borrowed(*k), Cow::Borrowed(r.str()?)));
                }
                let mut fields = Vec::with_capacity(shape.fields.len());
                for (k, t) in &shape.fields {
                    let v = match t {
                        0 => FieldValue::Float(f64::from_bits(r.u64()?)),
                        1 => FieldValue::Integer(r.u64()? as i64),
                        2 => FieldValue::UInteger(r.u64()?),
                        3 => FieldValue::String(Cow::Borrowed(r.str()?)),
                        4 => FieldValue::Boolean(r.take(1)?[0] != 0),
                        t => return Err(WalError::Decode(format!("unknown field type {t}"))),
                    };
                    fields.push((Cow::Borrowed(*k), v));
                }
                points.push(Point {
                    measurement: Cow::Borrowed(shape.measurement),
                    tags,
                    fields,
                    time: r.u64()? as i64,
                });
            }
            shards.push(ShardWrite { shard_id, points });
        }
        r.finish()?;
        Ok(Self {
            database,
            rp,
            shards,
        })
    }

    /// Version 1: per shard, its database, policy and canonical line protocol.
    fn decode_v1(mut r: Reader<'a>) -> Result<Self, WalError> {
        let n = r.u32()? as usize;
        let mut entry = Self {
            database: Cow::Borrowed(""),
            rp: Cow::Borrowed(""),
            shards: Vec::with_capacity(n.min(1024)),
        };
        let opts = ParseOptions {
            precision: Precision::Nanoseconds,
            default_time: 0,
            allow_unsigned: true,
        };
        for _ in 0..n {
            let shard_id = r.u64()?;
            let n = r.u32()? as usize;
            entry.database = Cow::Borrowed(r.utf8(n)?);
            let n = r.u32()? as usize;
            entry.rp = Cow::Borrowed(r.utf8(n)?);
            let n = r.u32()? as usize;
            let parsed = parse_body(r.take(n)?, &opts);
            if let Some(e) = parsed.errors.first() {
                return Err(WalError::Decode(format!("entry holds a bad line: {e}")));
            }
            entry.shards.push(ShardWrite {
                shard_id,
                points: parsed.points,
            });
        }
        r.finish()?;
        Ok(entry)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WalError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| WalError::Decode("entry ends early".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, WalError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, WalError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }
    fn varint(&mut self) -> Result<u64, WalError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WalError::Decode("varint longer than 64 bits".into()))
    }
    /// A count of items that each take at least `min_bytes`: larger than what is left means
    /// corruption.
    fn count(&mut self, min_bytes: usize) -> Result<usize, WalError> {
        let n = self.varint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes as u64) > left {
            return Err(WalError::Decode(
                "count runs past the end of the entry".into(),
            ));
        }
        Ok(n as usize)
    }
    fn utf8(&mut self, n: usize) -> Result<&'a str, WalError> {
        std::str::from_utf8(self.take(n)?)
            .map_err(|_| WalError::Decode("entry holds invalid UTF-8".into()))
    }
    fn str(&mut self) -> Result<&'a str, WalError> {
        let n = usize::try_from(self.varint()?)
            .map_err(|_| WalError::Decode("string length overflows".into()))?;
        self.utf8(n)
    }
    fn finish(&self) -> Result<(), WalError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(WalError::Decode("bytes left over after the entry".into()))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn points(body: &str) -> Vec<Point<'_>> {
        let opts = ParseOptions {
            allow_unsigned: true,
            ..ParseOptions::default()
        };
        let parsed = parse_body(body.as_bytes(), &opts);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed.points
    }

    pub(crate) fn entry(n: u64) -> Vec<u8> {
        let body = format!("m v={n} {n}");
        let p = points(&body);
        encode_entry("db", "autogen", &[(n, p.iter().collect())])
    }

    /// A version-1 entry as the line-protocol WAL wrote it.
    fn v1_entry(shards: &[(u64, &str)]) -> Vec<u8> {
        let mut out = vec![ENTRY_V1];
        out.extend_from_slice(&(shards.len() as u32).to_le_bytes());
        for (id, lines) in shards {
            out.extend_from_slice(&id.to_le_bytes());
            for s in ["db", "autogen", lines] {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }

    #[test]
    fn points_round_trip_bit_for_bit() {
        let body = "cpu,host=a,region=eu usage=1.5,count=-3i,big=18446744073709551615u,ok=true,msg=\"hé \\\"q\\\"\" -1\n\
                    cpu,host=b,region=eu usage=0.1,count=4i,big=0u,ok=false,msg=\"\" 9223372036854775806\n\
                    disk,path=/a\\ b free=2 3\n\
                    cpu,host=c usage=-0.0 4\n\
                    cpu,host=d,region=us usage=1e-300,count=5i,big=1u,ok=t,msg=\"x\" -9223372036854775806\n\
                    cpu,host=e,region=eu usage=2.5,count=4i,big=7u,ok=F,msg=\"z\" 5\n";
        let ps = points(body);
        assert_eq!(ps.len(), 6);
        let shards = vec![(7, ps[..3].iter().collect()), (9, ps[3..].iter().collect())];
        let bytes = encode_entry("my db", "rp,1", &shards);
        let e = WalEntry::decode(&bytes).unwrap();
        assert_eq!((e.database.as_ref(), e.rp.as_ref()), ("my db", "rp,1"));
        assert_eq!(e.shards.len(), 2);
        assert_eq!((e.shards[0].shard_id, e.shards[1].shard_id), (7, 9));
        assert_eq!(e.shards[0].points, ps[..3]);
        assert_eq!(e.shards[1].points, ps[3..]);
        // -0.0 == 0.0 as floats; the bits must survive too.
        let FieldValue::Float(z) = e.shards[1].points[0].fields[0].1 else {
            panic!("not a float")
        };
        assert_eq!(z.to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn a_shape_is_written_once_per_entry() {
        let body: String = (0..100)
            .map(|i| {
                format!("cpu_measurement,hostname=host_{i} usage_user={i}.5,usage_idle=2i {i}\n")
            })
            .collect();
        let ps = points(&body);
        let bytes = encode_entry("db", "autogen", &[(1, ps.iter().collect())]);
        let count = |needle: &[u8]| bytes.windows(needle.len()).filter(|w| *w == needle).count();
        assert_eq!(count(b"cpu_measurement"), 1);
        assert_eq!(count(b"usage_user"), 1);
        assert_eq!(count(b"hostname"), 1);
        assert_eq!(WalEntry::decode(&bytes).unwrap().shards[0].points, ps);
    }

    #[test]
    fn version_one_entries_still_replay() {
        let bytes = v1_entry(&[(3, "m,t=a v=1 10\nm,t=b s=\"x\" 11\n"), (4, "n u=2u 12\n")]);
        let e = WalEntry::decode(&bytes).unwrap();
        assert_eq!((e.database.as_ref(), e.rp.as_ref()), ("db", "autogen"));
        assert_eq!(e.shards[0].points, points("m,t=a v=1 10\nm,t=b s=\"x\" 11"));
        assert_eq!(e.shards[1].points, points("n u=2u 12"));
        assert!(WalEntry::decode(&v1_entry(&[(1, "m v=")])).is_err());
        // A segment left by the line-protocol WAL is read back after an upgrade.
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = crate::wal::Wal::open(dir.path()).unwrap();
            wal.append(&[&bytes, &entry(5)]).unwrap();
        }
        let (_, replayed) = crate::wal::Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![bytes, entry(5)]);
    }

    #[test]
    fn every_truncation_and_flip_is_an_error_not_a_panic() {
        let ps = points("cpu,host=a v=1,s=\"str\",b=true 1\ncpu,host=b v=2,s=\"t\",b=false 2");
        let bytes = encode_entry("db", "rp", &[(1, ps.iter().collect())]);
        for n in 0..bytes.len() {
            assert!(
                WalEntry::decode(&bytes[..n]).is_err(),
                "prefix of {n} bytes"
            );
        }
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                let _ = WalEntry::decode(&b);
            }
        }
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        for bytes in [
            &b""[..],
            &[1],
            &[1, 255, 255, 255, 255],
            &[3, 0, 0, 0, 0],
            &[2, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1],
        ] {
            assert!(WalEntry::decode(bytes).is_err());
        }
    }
}
