//! A local file opened as one version, so that ranges of it can go to a socket the way they
//! lie in the page cache (`sendfile`): the kernel hands the cached pages to the socket and
//! nothing is copied through a buffer of ours. A clear media segment is mostly such a range
//! (its samples, as stored); the origin writes its own boxes around them.
//!
//! `sendfile` on a non-blocking socket never waits for the socket, but it does wait for the
//! disk when a page is not cached, and it would do that on a runtime thread. So before a range
//! is sent, [`LocalFile::resident`] asks the kernel whether the page cache holds all of it
//! (`cachestat`, Linux 6.5; no read, no mapping), and a range that is not held is first read
//! in on the blocking pool ([`LocalFile::warm`]). On a kernel without `cachestat` no file is
//! offered for sending ([`crate::Store::open_local`] answers `None`) and segments are read
//! and written as before. Neither call is offered by a crate with the file ownership we need
//! here (rustix has `sendfile`, which is used, but not `cachestat`).
//!
//! The descriptor is the checked version for as long as it is held: a file replaced by a
//! rename after the check is still sent whole from the checked one. A file truncated in place
//! makes `sendfile` return short, which the sender must treat as an error (the response is
//! cut, never padded or mixed).

use std::fs::File;
use std::ops::Range;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use crate::{Counters, Error, Result};

/// Bytes read at a time when a range is brought into the page cache.
const WARM: usize = 256 * 1024;

/// A local file of one checked version, stored clear.
pub struct LocalFile {
    file: Arc<File>,
    path: String,
    size: u64,
    counters: Arc<Counters>,
    /// The store's observer: reads count as the `local` backend's, as the store's own do.
    observer: Option<Arc<dyn crate::Observer>>,
}

impl std::fmt::Debug for LocalFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalFile").field("path", &self.path).field("size", &self.size).finish()
    }
}

impl LocalFile {
    pub(crate) fn new(file: File, path: String, size: u64, counters: Arc<Counters>, observer: Option<Arc<dyn crate::Observer>>) -> LocalFile {
        LocalFile { file: Arc::new(file), path, size, counters, observer }
    }

    /// Its path below the store root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its size when it was checked.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads `range` (it must lie within the file): from the page cache on this thread when
    /// it is there, the rest on the blocking pool. Fails unless every byte comes back. The
    /// store's observer hears of it as a read of the `local` backend.
    pub async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        let Some(o) = &self.observer else { return self.read_unobserved(range).await };
        let started = std::time::Instant::now();
        let r = self.read_unobserved(range).await;
        o.operation("local", crate::Op::Read, crate::outcome(&r), started.elapsed(), r.as_ref().map_or(0, |b| b.len() as u64));
        r
    }

    async fn read_unobserved(&self, range: Range<u64>) -> Result<Bytes> {
        self.check(&range)?;
        let len = range.end - range.start;
        let cap = usize::try_from(len).map_err(|_| Error::Unavailable("range too large".into()))?;
        let mut v: Vec<u8> = Vec::new();
        v.try_reserve_exact(cap).map_err(|_| Error::Unavailable(format!("cannot allocate {len} bytes")))?;
        self.counters.range_reads.fetch_add(1, Ordering::Relaxed);
        // First from the page cache on this thread (all of it, or up to the end of the file).
        #[cfg(target_os = "linux")]
        let rest_from = match crate::cached::read_open(&self.file, range.start, len, &mut v) {
            crate::cached::Nowait::Whole => None,
            crate::cached::Nowait::Part(n) => Some(n),
        };
        #[cfg(not(target_os = "linux"))]
        let rest_from = Some(0u64);
        if let Some(n) = rest_from {
            let (file, path) = (self.file.clone(), self.path.clone());
            v = tokio::task::spawn_blocking(move || {
                crate::read_rest(&file, &path, range.start + n, len - n, &mut v)?;
                Ok::<_, Error>(v)
            })
            .await
            .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))??;
        }
        let got = v.len() as u64;
        self.counters.bytes_read.fetch_add(got, Ordering::Relaxed);
        if got != len {
            return Err(Error::ShortRead { path: self.path.clone(), want: len, got });
        }
        Ok(Bytes::from(v))
    }

    /// Whether the page cache holds every page of `range` now (`false` when the kernel cannot
    /// say).
    pub fn resident(&self, range: Range<u64>) -> bool {
        if range.is_empty() {
            return true;
        }
        let page = page_size();
        let pages = (range.end - 1) / page - range.start / page + 1;
        cachestat(&self.file, range.start, range.end - range.start).is_some_and(|cached| cached >= pages)
    }

    /// Brings `range` into the page cache, reading it on the blocking pool through a small
    /// buffer of its own (the bytes read are dropped; the pages stay cached).
    pub async fn warm(&self, range: Range<u64>) -> Result<()> {
        self.check(&range)?;
        let (file, path) = (self.file.clone(), self.path.clone());
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::FileExt;
            let mut scratch = vec![0u8; WARM];
            let mut at = range.start;
            while at < range.end {
                let n = (range.end - at).min(WARM as u64) as usize;
                match file.read_at(&mut scratch[..n], at) {
                    Ok(0) => return Err(Error::ShortRead { path, want: range.end - range.start, got: at - range.start }),
                    Ok(k) => at += k as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::Unavailable(format!("{path}: {e}"))),
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Unavailable(format!("read task failed: {e}")))?
    }

    /// One `sendfile` of up to `len` bytes at `offset` to `socket` (non-blocking: `WouldBlock`
    /// when its buffer is full); the bytes sent, 0 at the end of the file.
    pub fn send_to(&self, socket: BorrowedFd<'_>, offset: u64, len: usize) -> std::io::Result<usize> {
        #[cfg(target_os = "linux")]
        let n = {
            let mut at = offset;
            rustix::fs::sendfile(socket, &*self.file, Some(&mut at), len)?
        };
        #[cfg(not(target_os = "linux"))]
        let n: usize = {
            let _ = (socket, offset, len);
            return Err(std::io::ErrorKind::Unsupported.into());
        };
        self.counters.bytes_sent_from_files.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn check(&self, range: &Range<u64>) -> Result<()> {
        if range.start > range.end || range.end > self.size {
            return Err(Error::Unavailable(format!("{}: range {}..{} outside its {} bytes", self.path, range.start, range.end, self.size)));
        }
        Ok(())
    }
}

/// Whether `cachestat` works here: 0 not known yet, 1 yes, 2 no.
static CACHESTAT: AtomicU8 = AtomicU8::new(0);

/// Whether this process has offered files for sending: `cachestat` was tried and works.
pub fn offered() -> bool {
    CACHESTAT.load(Ordering::Relaxed) == 1
}

/// Whether files can be offered for sending: `cachestat` is known to work, or not known not to.
pub(crate) fn may_offer() -> bool {
    CACHESTAT.load(Ordering::Relaxed) != 2
}

/// Whether `file` can be offered for sending: asks the kernel once (a kernel without
/// `cachestat` answers `ENOSYS`, a sandbox may answer `EPERM`).
pub(crate) fn offer(file: &File) -> bool {
    match CACHESTAT.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let works = cachestat(file, 0, 1).is_some();
            CACHESTAT.store(if works { 1 } else { 2 }, Ordering::Relaxed);
            works
        }
    }
}

fn page_size() -> u64 {
    // SAFETY: `sysconf` reads a constant of the system; no memory is passed.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// `cachestat(2)`'s number, the same on every architecture that has it (added in 6.5, after
/// the syscall tables were unified); libc does not name it for every target yet.
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
const SYS_CACHESTAT: libc::c_long = 451;

/// Pages of `len` bytes at `off` of `file` in the page cache, or `None` when the kernel cannot
/// tell.
#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64")))]
fn cachestat(file: &File, off: u64, len: u64) -> Option<u64> {
    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    let range = CachestatRange { off, len };
    let mut stat = Cachestat::default();
    // SAFETY: both pointers are to live `repr(C)` structs laid out as the kernel's
    // `struct cachestat_range` and `struct cachestat` (include/uapi/linux/mman.h); the kernel
    // reads the first and writes the second, and `flags` must be 0.
    let r = unsafe { libc::syscall(SYS_CACHESTAT, file.as_raw_fd(), &range as *const CachestatRange, &mut stat as *mut Cachestat, 0u32) };
    (r == 0).then_some(stat.nr_cache)
}

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "riscv64"))))]
fn cachestat(_: &File, _: u64, _: u64) -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    /// Drops `path`'s clean pages from the page cache (after writing them back).
    fn evict(path: &std::path::Path) {
        let f = std::fs::File::open(path).unwrap();
        f.sync_all().unwrap();
        // SAFETY: a plain advice call on an open descriptor; no memory is passed.
        assert_eq!(unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }, 0);
    }

    /// What a store's observer heard: (backend, operation, outcome, bytes).
    #[derive(Default)]
    struct Heard(std::sync::Mutex<Vec<(String, crate::Op, &'static str, u64)>>);

    impl crate::Observer for Heard {
        fn operation(&self, store: &str, op: crate::Op, outcome: &'static str, _: std::time::Duration, bytes: u64) {
            self.0.lock().unwrap().push((store.to_string(), op, outcome, bytes));
        }
    }

    /// A file whose pages are out of the page cache reads whole through the blocking pool,
    /// and is resident after `warm`; ranges are checked against the checked size; a file of
    /// another version is not opened. The store's observer hears of each read, as of the
    /// store's own.
    #[tokio::test]
    async fn cold_ranges_read_whole_and_warm_makes_them_resident() {
        let dir = std::env::temp_dir().join(format!("sealcast-sendable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 253) as u8).collect();
        let path = dir.join("f");
        std::fs::write(&path, &data).unwrap();
        let heard = std::sync::Arc::new(Heard::default());
        let store = crate::Store::local(&dir).unwrap().with_observer(heard.clone());
        let info = store.head("f").await.unwrap();
        let Some(file) = store.open_local(&info).await.unwrap() else {
            assert!(!super::offered(), "a local clear file is offered where the kernel can tell what is cached");
            std::fs::remove_dir_all(dir).unwrap();
            return;
        };
        assert_eq!(file.size(), data.len() as u64);
        assert!(file.resident(5..5), "an empty range is resident");
        assert!(!file.resident(file.size()..file.size() + 4096), "nothing past the end is cached");
        evict(&path);
        // File systems that keep pages regardless (tmpfs) leave nothing cold to check here.
        let cold = !file.resident(0..file.size());
        assert_eq!(&file.read(100..(2 << 20) + 7).await.unwrap()[..], &data[100..(2 << 20) + 7]);
        evict(&path);
        assert!(!cold || !file.resident(4096..(3 << 20)), "evicted again");
        file.warm(4096..(3 << 20)).await.unwrap();
        assert!(file.resident(4096..(3 << 20)), "warm leaves the range in the page cache");
        assert!(file.read(0..file.size() + 1).await.is_err() && file.warm(10..file.size() + 1).await.is_err(), "past the checked size");
        let reads: Vec<_> = heard.0.lock().unwrap().iter().filter(|h| h.1 == crate::Op::Read).cloned().collect();
        assert_eq!(reads, [("local".to_string(), crate::Op::Read, "ok", (2 << 20) + 7 - 100), ("local".to_string(), crate::Op::Read, "unavailable", 0)]);
        // Another version (a new modification time) is not opened, and says so.
        let later = info.last_modified + std::time::Duration::from_secs(5);
        std::fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        assert!(matches!(store.open_local(&info).await, Err(crate::Error::Changed(_))));
        std::fs::remove_dir_all(dir).unwrap();
        eprintln!("cold path checked: {cold}");
    }
}
