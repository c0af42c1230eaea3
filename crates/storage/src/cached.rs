//! Local reads that never block, tried on the runtime thread before the blocking pool.
//!
//! A local read in the blocking pool costs two thread switches and the path checks of
//! [`crate::confine`] (its real path component by component, then `/proc/self/fd`): for a
//! fragment in the page cache that is more than the read itself (`perf` of cbcs segments:
//! 6 % of the CPU in `finish_task_switch` alone). Linux can say, without waiting, whether a
//! read would have to wait:
//!
//! - `openat2` with `RESOLVE_CACHED` opens only if every path component is in the dentry
//!   cache (else `EAGAIN`), and with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` only below the
//!   root's directory descriptor: `..` above it, absolute symlinks and `/proc` magic links
//!   are refused by the kernel (`EXDEV`, `ELOOP`);
//! - `preadv2` with `RWF_NOWAIT` reads what is in the page cache and answers `EAGAIN` for the
//!   rest.
//!
//! So the read is tried that way first; whatever it cannot do (a cold path, a symlink the
//! kernel refuses, bytes not cached, an older kernel) is done by the blocking path as before,
//! which stays the one that decides errors. No crate offers these two calls together with a
//! read into uninitialised capacity, so the `preadv2` call is written here.
//!
//! The root's descriptor is opened once, when the store is: a root folder replaced by another
//! of the same name afterwards (rather than its files) is seen by the blocking path only, so
//! restart the server after such a swap.
//!
//! Measured (benches/README.md, 2026-12-04): alternated 3 s runs over 480 MB of segments, medians
//! of 8: cenc +6 %, cbcs +5 %, clear TS +7 %, AES-128 TS +4 %, and much steadier runs.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::LocalVersion;

/// What the non-blocking attempt got.
pub(crate) enum Cached {
    /// All of it (or up to the end of the file, which the caller reports as a short read).
    Done,
    /// Part of it (what is in `buf`), from this open file, which is the checked version: the
    /// rest is to be read from it in the blocking pool.
    Rest(File),
    /// Nothing: the blocking path must do the whole read.
    No,
}

/// Tries to read `len` bytes at `start` of `rel` (below `dir`) into `buf`'s spare capacity
/// without blocking. `version`: the open file must be that version, else [`Cached::No`] (the
/// blocking path then reports the change).
pub(crate) fn read(dir: &OwnedFd, rel: &str, start: u64, len: u64, version: Option<LocalVersion>, buf: &mut Vec<u8>) -> Cached {
    let Some(file) = open(dir, rel, version) else { return Cached::No };
    match read_open(&file, start, len, buf) {
        Nowait::Whole => Cached::Done,
        Nowait::Part(0) => Cached::No,
        Nowait::Part(_) => Cached::Rest(file),
    }
}

/// What a read that never blocks got.
pub(crate) enum Nowait {
    /// Every byte asked for, or up to the end of the file.
    Whole,
    /// This many bytes; the rest is not cached (or could not be read here).
    Part(u64),
}

/// Opens `rel` (below `dir`) without blocking: `None` when the path is not all in the dentry
/// cache, the kernel refuses it, it is not a regular file, or (with `version`) the open file
/// is not that version — the blocking path then decides and reports.
pub(crate) fn open(dir: &OwnedFd, rel: &str, version: Option<LocalVersion>) -> Option<File> {
    let how = ResolveFlags::CACHED | ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    let fd = rustix::fs::openat2(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK, Mode::empty(), how).ok()?;
    let file = File::from(fd);
    let meta = file.metadata().ok()?;
    // Only regular files: a FIFO or a device named inside the root is the blocking path's to
    // refuse.
    if !meta.is_file() || version.is_some_and(|v| v.check(rel, &meta).is_err()) {
        return None;
    }
    Some(file)
}

/// Reads `len` bytes at `start` of the open `file` into `buf`'s spare capacity, as far as the
/// page cache holds them.
pub(crate) fn read_open(file: &File, start: u64, len: u64, buf: &mut Vec<u8>) -> Nowait {
    let mut got = 0u64;
    while got < len {
        let Ok(want) = usize::try_from(len - got) else { return Nowait::Part(got) };
        match read_nowait(file, buf, want, start + got) {
            Ok(0) => return Nowait::Whole,
            Ok(n) => got += n as u64,
            Err(_) => return Nowait::Part(got),
        }
    }
    Nowait::Whole
}

/// One `preadv2(RWF_NOWAIT)` of at most `want` bytes at `offset`, appended to `buf` (whose
/// spare capacity must hold them).
fn read_nowait(file: &File, buf: &mut Vec<u8>, want: usize, offset: u64) -> std::io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let want = want.min(spare.len());
    let iov = libc::iovec { iov_base: spare.as_mut_ptr().cast(), iov_len: want };
    let Ok(offset) = libc::off_t::try_from(offset) else { return Err(std::io::ErrorKind::InvalidInput.into()) };
    // SAFETY: `iov` describes `want` bytes of `buf`'s spare capacity, which this function
    // borrows mutably for the call; the kernel writes at most `iov_len` bytes there and
    // returns how many, and only those are then marked initialised.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let n = n as usize;
    // SAFETY: the kernel initialised the first `n` (<= `want` <= spare) bytes past `len`.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}
