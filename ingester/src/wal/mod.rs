//! The write-ahead log: every acknowledged write is here, checksummed and fsynced, until the
//! Parquet files that hold it are durable.
//!
//! ```text
//!   wal/00000000000000000007.wal   segment: [len u32][crc32 u32][payload]...
//!   wal/00000000000000000008.wal   the open segment; older ones wait for persistence
//! ```
//!
//! This module is the segment log; [`codec`] is the entry format. One entry is one write
//! request (all of its shards), so a request is replayed whole or not at all. An entry holds
//! the parsed points in binary ([`encode_entry`]), so the write path formats nothing and
//! replay gets back the very same values. Appends come from many requests at once; a single
//! writer thread takes all that are waiting, writes them, fsyncs once and acknowledges them
//! together (group commit). If a write or fsync fails, the segment is cut back to where the
//! batch began, so a failed request leaves no bytes behind; if even that fails, the WAL refuses
//! every later write until restart.
//!
//! On open, every segment is read in order. An entry whose length or checksum does not match
//! (a write torn by a crash) ends its segment: the file is truncated there with a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use tokio::sync::oneshot;

use crate::error::WalError;

pub mod codec;

pub use codec::{ShardWrite, WalEntry, encode_entry};

const FRAME_HEADER: usize = 8;
/// Largest entry accepted on replay; anything larger is a torn or corrupt length.
const MAX_ENTRY: usize = 1 << 30;
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

/// Appends `payload` to `out` as one frame: `[len u32][crc32 u32][payload]`, little-endian.
/// The segment format of the WAL, and of any other log of checksummed entries (hinted handoff).
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What [`read_frame`] found.
#[derive(Debug)]
pub enum Frame {
    /// A whole entry whose checksum matches.
    Entry(Vec<u8>),
    /// Nothing left to read.
    End,
    /// A frame cut short or corrupt (a write torn by a crash): what is wrong with it.
    Torn(String),
}

/// Reads the frame at the reader's position, `remaining` bytes before the end of its file.
pub fn read_frame(r: &mut impl Read, remaining: u64) -> std::io::Result<Frame> {
    if remaining == 0 {
        return Ok(Frame::End);
    }
    if remaining < FRAME_HEADER as u64 {
        return Ok(Frame::Torn("partial entry header".into()));
    }
    let mut header = [0u8; FRAME_HEADER];
    r.read_exact(&mut header)?;
    let n = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if n > MAX_ENTRY || (n as u64) > remaining - FRAME_HEADER as u64 {
        return Ok(Frame::Torn(format!(
            "entry of {n} bytes runs past the end of the file"
        )));
    }
    let mut payload = vec![0u8; n];
    r.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(Frame::Torn("checksum mismatch".into()));
    }
    Ok(Frame::Entry(payload))
}

/// Bytes a frame of `payload_len` takes.
pub fn frame_len(payload_len: usize) -> u64 {
    (FRAME_HEADER + payload_len) as u64
}

/// Reads one segment's entries (checked, still encoded); truncates it at the first torn one.
fn replay_segment(path: &Path, out: &mut Vec<Vec<u8>>) -> Result<(), WalError> {
    let file = File::open(path).map_err(|e| WalError::io(path, e))?;
    let len = file.metadata().map_err(|e| WalError::io(path, e))?.len();
    let mut r = BufReader::new(file);
    let mut offset: u64 = 0;
    let torn = loop {
        match read_frame(&mut r, len - offset).map_err(|e| WalError::io(path, e))? {
            Frame::End => break None,
            Frame::Torn(why) => break Some(why),
            Frame::Entry(payload) => {
                if let Err(e) = WalEntry::decode(&payload) {
                    break Some(e.to_string());
                }
                offset += frame_len(payload.len());
                out.push(payload);
            }
        }
    };
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
            put_frame(&mut buf, p);
        }
        let path = segment_path(&self.dir, self.current);
        let started = std::time::Instant::now();
        let res = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        crate::metrics::WAL_FSYNC.record(started.elapsed());
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
    use super::codec::tests::entry;
    use super::*;

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
}
