//! The write-ahead log: every acknowledged write is here, checksummed and fsynced, until the
//! Parquet files that hold it are durable.
//!
//! ```text
//!   wal/00000000000000000007.wal   segment: [len u32][crc32 u32][payload]...
//!   wal/00000000000000000008.wal   the open segment; older ones wait for persistence
//! ```
//!
//! One entry is one write request (all of its shards), so a request is replayed whole or not
//! at all. An entry holds the parsed points in binary ([`encode_entry`]), so the write path
//! formats nothing and replay gets back the very same values. Appends come from many requests at once; a single writer thread takes all that are
//! waiting, writes them, fsyncs once and acknowledges them together (group commit). If a write
//! or fsync fails, the segment is cut back to where the batch began, so a failed request
//! leaves no bytes behind; if even that fails, the WAL refuses every later write until restart.
//!
//! On open, every segment is read in order. An entry whose length or checksum does not match
//! (a write torn by a crash) ends its segment: the file is truncated there with a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use std::borrow::Cow;

use line_protocol::{FieldValue, ParseOptions, Point, Precision, parse_body};
use tokio::sync::oneshot;

use crate::error::WalError;

const FRAME_HEADER: usize = 8;
/// Largest entry accepted on replay; anything larger is a torn or corrupt length.
const MAX_ENTRY: usize = 1 << 30;
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

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut ids = Vec::new();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(id) = name
            .strip_suffix(".wal")
            .and_then(|s| s.parse::<u64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WalError::io(dir, e))
}

/// Reads one segment's entries (checked, still encoded); truncates it at the first torn one.
fn replay_segment(path: &Path, out: &mut Vec<Vec<u8>>) -> Result<(), WalError> {
    let file = File::open(path).map_err(|e| WalError::io(path, e))?;
    let len = file.metadata().map_err(|e| WalError::io(path, e))?.len();
    let mut r = BufReader::new(file);
    let mut offset: u64 = 0;
    let mut header = [0u8; FRAME_HEADER];
    let mut torn: Option<String> = None;
    while offset < len {
        if len - offset < FRAME_HEADER as u64 {
            torn = Some("partial entry header".into());
            break;
        }
        r.read_exact(&mut header)
            .map_err(|e| WalError::io(path, e))?;
        let n = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if n > MAX_ENTRY || (n as u64) > len - offset - FRAME_HEADER as u64 {
            torn = Some(format!("entry of {n} bytes runs past the end of the file"));
            break;
        }
        let mut payload = vec![0u8; n];
        r.read_exact(&mut payload)
            .map_err(|e| WalError::io(path, e))?;
        if crc32fast::hash(&payload) != crc {
            torn = Some("checksum mismatch".into());
            break;
        }
        if let Err(e) = WalEntry::decode(&payload) {
            torn = Some(e.to_string());
            break;
        }
        out.push(payload);
        offset += (FRAME_HEADER + n) as u64;
    }
    if let Some(why) = torn {
        tracing::warn!(segment = %path.display(), offset, len, reason = %why, "WAL segment has a torn tail; truncating it");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| WalError::io(path, e))?;
        f.set_len(offset).map_err(|e| WalError::io(path, e))?;
        f.sync_all().map_err(|e| WalError::io(path, e))?;
    }
    Ok(())
}

/// The segments and the open file. Owned by the writer thread.
pub struct Wal {
    dir: PathBuf,
    file: File,
    current: u64,
    offset: u64,
    /// Closed segments whose data is not yet known to be in Parquet.
    closed: Vec<u64>,
    broken: Option<String>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("current", &self.current)
            .finish()
    }
}

impl Wal {
    /// Reads every segment under `dir` and opens a new one for appends. Returns the entries
    /// found, each checked to decode (see [`WalEntry::decode`]), in the order written.
    pub fn open(dir: &Path) -> Result<(Self, Vec<Vec<u8>>), WalError> {
        fs::create_dir_all(dir).map_err(|e| WalError::io(dir, e))?;
        let ids = list_segments(dir)?;
        let mut entries = Vec::new();
        for &id in &ids {
            replay_segment(&segment_path(dir, id), &mut entries)?;
        }
        let current = ids.last().map_or(1, |l| l + 1);
        let file = Self::create_segment(dir, current)?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                file,
                current,
                offset: 0,
                closed: ids,
                broken: None,
            },
            entries,
        ))
    }

    fn create_segment(dir: &Path, id: u64) -> Result<File, WalError> {
        let path = segment_path(dir, id);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| WalError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(f)
    }

    /// Appends entries and fsyncs. All or nothing: on failure the segment is cut back.
    pub fn append(&mut self, payloads: &[&[u8]]) -> Result<(), WalError> {
        if let Some(why) = &self.broken {
            return Err(WalError::Broken(why.clone()));
        }
        let total: usize = payloads.iter().map(|p| FRAME_HEADER + p.len()).sum();
        let mut buf = Vec::with_capacity(total);
        for p in payloads {
            buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
            buf.extend_from_slice(p);
        }
        let path = segment_path(&self.dir, self.current);
        let res = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        match res {
            Ok(()) => {
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let cut = self
                    .file
                    .set_len(self.offset)
                    .and_then(|_| self.file.seek(SeekFrom::End(0)).map(|_| ()));
                if let Err(e2) = cut.and_then(|_| self.file.sync_data()) {
                    let why = format!(
                        "could not cut {} back after a failed write ({e}): {e2}",
                        path.display()
                    );
                    tracing::error!("{why}");
                    self.broken = Some(why);
                }
                Err(WalError::io(&path, e))
            }
        }
    }

    /// Closes the open segment and starts a new one. Returns every closed segment not yet
    /// released: once the data written so far is durable elsewhere, [`Wal::release`] them.
    pub fn rotate(&mut self) -> Result<Vec<u64>, WalError> {
        let next = self.current + 1;
        let file = Self::create_segment(&self.dir, next)?;
        self.closed.push(self.current);
        self.file = file;
        self.current = next;
        self.offset = 0;
        Ok(self.closed.clone())
    }

    /// Deletes closed segments whose data is persisted.
    pub fn release(&mut self, ids: &[u64]) -> Result<(), WalError> {
        for id in ids {
            let p = segment_path(&self.dir, *id);
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(WalError::io(&p, e)),
            }
        }
        self.closed.retain(|c| !ids.contains(c));
        sync_dir(&self.dir)
    }

    /// Bytes in the open segment.
    pub fn current_size(&self) -> u64 {
        self.offset
    }
}

/// Requests to the writer thread.
pub enum WalRequest {
    Append {
        payload: Vec<u8>,
        done: oneshot::Sender<Result<(), WalError>>,
    },
    Rotate {
        done: oneshot::Sender<Result<Vec<u64>, WalError>>,
    },
    Release {
        ids: Vec<u64>,
        done: oneshot::Sender<Result<(), WalError>>,
    },
}

/// Runs the group-commit loop on the calling (dedicated) thread until every sender is gone.
pub fn run_writer(mut wal: Wal, rx: std::sync::mpsc::Receiver<WalRequest>) {
    let mut pending: Vec<(Vec<u8>, oneshot::Sender<Result<(), WalError>>)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut queue = vec![first];
        while let Ok(more) = rx.try_recv() {
            queue.push(more);
            if queue.len() >= 4096 {
                break;
            }
        }
        for req in queue {
            match req {
                WalRequest::Append { payload, done } => pending.push((payload, done)),
                other => {
                    flush(&mut wal, &mut pending);
                    match other {
                        WalRequest::Rotate { done } => {
                            let _ = done.send(wal.rotate());
                        }
                        WalRequest::Release { ids, done } => {
                            let _ = done.send(wal.release(&ids));
                        }
                        WalRequest::Append { .. } => {}
                    }
                }
            }
        }
        flush(&mut wal, &mut pending);
    }
}

fn flush(wal: &mut Wal, pending: &mut Vec<(Vec<u8>, oneshot::Sender<Result<(), WalError>>)>) {
    if pending.is_empty() {
        return;
    }
    let payloads: Vec<&[u8]> = pending.iter().map(|(p, _)| p.as_slice()).collect();
    let res = wal.append(&payloads);
    for (_, done) in pending.drain(..) {
        let _ = done.send(res.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(body: &str) -> Vec<Point<'_>> {
        let opts = ParseOptions {
            allow_unsigned: true,
            ..ParseOptions::default()
        };
        let parsed = parse_body(body.as_bytes(), &opts);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        parsed.points
    }

    fn entry(n: u64) -> Vec<u8> {
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
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.append(&[&bytes, &entry(5)]).unwrap();
        }
        let (_, replayed) = Wal::open(dir.path()).unwrap();
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
    fn entries_round_trip_through_segments() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, replayed) = Wal::open(dir.path()).unwrap();
            assert!(replayed.is_empty());
            wal.append(&[&entry(1), &entry(2)]).unwrap();
            wal.rotate().unwrap();
            wal.append(&[&entry(3)]).unwrap();
        }
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![entry(1), entry(2), entry(3)]);
    }

    #[test]
    fn torn_tail_is_truncated_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let seg;
        {
            let (mut wal, _) = Wal::open(dir.path()).unwrap();
            wal.append(&[&entry(1)]).unwrap();
            wal.append(&[&entry(2)]).unwrap();
            seg = segment_path(dir.path(), wal.current);
        }
        let len = fs::metadata(&seg).unwrap().len();
        // Cut the last entry in half, as a crash mid-write would.
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![entry(1)]);
        // Garbage after a good entry (a checksum mismatch) is cut too.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[10, 0, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap();
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![entry(1)]);
        assert_eq!(
            fs::metadata(&seg).unwrap().len(),
            (FRAME_HEADER + entry(1).len()) as u64
        );
    }

    #[test]
    fn release_deletes_closed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[&entry(1)]).unwrap();
        let closed = wal.rotate().unwrap();
        wal.append(&[&entry(2)]).unwrap();
        wal.release(&closed).unwrap();
        drop(wal);
        let (_, replayed) = Wal::open(dir.path()).unwrap();
        assert_eq!(replayed, vec![entry(2)]);
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
