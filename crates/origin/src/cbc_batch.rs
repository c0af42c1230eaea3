//! HLS AES-128 segments of concurrent requests encrypted together.
//!
//! A whole segment is one CBC chain, and one chain runs at the latency of AES (serial), but
//! the segments of different requests are independent chains, under their own keys and IVs.
//! [`sealcast_cenc::multibuf`] encrypts up to eight of them in one pass at the AES unit's
//! throughput. This queue gathers them: a request that has built its clear segment queues
//! it, lets the other ready requests of its worker run once (they build and queue theirs),
//! then encrypts whatever is queued, its own among them, and hands each request its result.
//! A request finding its segment done by another goes on at once.
//!
//! On an idle server a request waits for one turn of its worker and encrypts its segment
//! alone, as before. Under load the AES unit is kept full; nothing waits for a timer.
//!
//! Fail closed: a request gets its encrypted segment or an error, never its clear bytes
//! back. A request dropped while its segment is queued (its client went away) takes the
//! segment out of the queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sealcast_cenc::multibuf::{encrypt_padded_many, MultiKey, Padded, LANES};
use tokio::sync::oneshot;

/// Segments encrypted per pass at most: a few turns of the lanes, so one request does not
/// hold its worker for the whole queue of a busy server (the rest are taken by their own
/// requests, or the next pass).
const PER_PASS: usize = 4 * LANES;

type Done = Result<Vec<Bytes>, sealcast_cenc::Error>;

struct Queued {
    id: u64,
    key: Arc<MultiKey>,
    iv: [u8; 16],
    data: Vec<u8>,
    done: oneshot::Sender<Done>,
}

/// The queue of segments waiting for encryption (one per server).
#[derive(Default)]
pub struct CbcBatch {
    queue: Mutex<Vec<Queued>>,
    next_id: AtomicU64,
    /// Passes made (tests).
    #[cfg(test)]
    passes: AtomicU64,
}

impl CbcBatch {
    /// HLS AES-128 (RFC 8216 §4.3.2.4: CBC with PKCS#7 padding) of `data` under `key` from
    /// `iv`, with the segments of other requests: the whole blocks, then the padded last one.
    pub async fn encrypt(&self, key: Arc<MultiKey>, iv: [u8; 16], data: Vec<u8>) -> Done {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (done, mut rx) = oneshot::channel();
        let queued = {
            let mut q = self.lock();
            q.push(Queued { id, key, iv, data, done });
            q.len()
        };
        let _withdraw = Withdraw { batch: self, id };
        if queued < LANES {
            // Let the other requests ready on this worker build and queue their segments.
            tokio::task::yield_now().await;
        }
        loop {
            match rx.try_recv() {
                Ok(r) => return r,
                Err(oneshot::error::TryRecvError::Closed) => return Err(lost()),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if !self.pass() {
                // Ours is being encrypted by another worker's pass.
                return rx.await.unwrap_or_else(|_| Err(lost()));
            }
        }
    }

    /// Encrypts up to [`PER_PASS`] queued segments; `false` when the queue was empty.
    fn pass(&self) -> bool {
        let taken: Vec<Queued> = {
            let mut q = self.lock();
            let n = q.len().min(PER_PASS);
            q.drain(..n).collect()
        };
        if taken.is_empty() {
            return false;
        }
        #[cfg(test)]
        self.passes.fetch_add(1, Ordering::Relaxed);
        let mut senders = Vec::with_capacity(taken.len());
        let mut keys = Vec::with_capacity(taken.len());
        let mut segments = Vec::with_capacity(taken.len());
        for q in taken {
            senders.push(q.done);
            keys.push(q.key);
            segments.push((q.iv, q.data));
        }
        let jobs = keys.iter().zip(segments).map(|(key, (iv, data))| Padded { key, iv, data }).collect();
        match encrypt_padded_many(jobs) {
            Ok(out) => {
                for (tx, (body, tail)) in senders.into_iter().zip(out) {
                    // A request that went away meanwhile no longer listens.
                    let _ = tx.send(Ok(vec![Bytes::from(body), Bytes::copy_from_slice(&tail)]));
                }
            }
            Err(e) => {
                for tx in senders {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Queued>> {
        // The queue holds plain data; a panic elsewhere cannot leave it half-changed.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn lost() -> sealcast_cenc::Error {
    sealcast_cenc::Error::Param("AES-128: the segment's encryption was abandoned")
}

/// Takes a request's segment out of the queue if the request goes away first.
struct Withdraw<'a> {
    batch: &'a CbcBatch,
    id: u64,
}

impl Drop for Withdraw<'_> {
    fn drop(&mut self) {
        self.batch.lock().retain(|q| q.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealcast_cenc::aes::AesCbc;

    fn segment(i: usize) -> Vec<u8> {
        (0..1000 + i * 377).map(|j| (j * 7 + i) as u8).collect()
    }

    fn alone(key: &[u8; 16], iv: [u8; 16], data: Vec<u8>) -> Vec<u8> {
        let (body, tail) = AesCbc::new(key).unwrap().encrypt_padded(iv, data).unwrap();
        [body, tail.to_vec()].concat()
    }

    /// A request for segment `i` under `key` and `iv`, spawned: what it got, and what aws-lc
    /// alone makes of the same segment.
    fn request(batch: &Arc<CbcBatch>, key: [u8; 16], iv: [u8; 16], i: usize) -> tokio::task::JoinHandle<(Vec<u8>, Vec<u8>)> {
        let batch = batch.clone();
        tokio::spawn(async move {
            let got = batch.encrypt(Arc::new(MultiKey::new(&key).unwrap()), iv, segment(i)).await.unwrap();
            (got.concat(), alone(&key, iv, segment(i)))
        })
    }

    /// Requests ready together are encrypted in one pass, each under its own key and IV as
    /// if alone; one more request later gets a pass of its own.
    #[tokio::test(flavor = "current_thread")]
    async fn ready_requests_share_a_pass_and_each_gets_its_own_segment() {
        let batch = Arc::new(CbcBatch::default());
        let tasks: Vec<_> = (0..6usize).map(|i| request(&batch, [i as u8; 16], [i as u8 ^ 0x5a; 16], i)).collect();
        for t in tasks {
            let (got, want) = t.await.unwrap();
            assert_eq!(got, want);
        }
        assert_eq!(batch.passes.load(Ordering::Relaxed), 1, "six ready requests, one pass");
        let got = batch.encrypt(Arc::new(MultiKey::new(&[9; 16]).unwrap()), [1; 16], segment(9)).await.unwrap();
        assert_eq!(got.concat(), alone(&[9; 16], [1; 16], segment(9)));
        assert_eq!(batch.passes.load(Ordering::Relaxed), 2);
        assert!(batch.lock().is_empty());
    }

    /// Many more requests than a pass takes, on several workers: every one answered, right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn a_crowd_on_several_workers_is_answered_in_full() {
        let batch = Arc::new(CbcBatch::default());
        let tasks: Vec<_> = (0..100usize).map(|i| request(&batch, [(i % 5) as u8; 16], [i as u8; 16], i % 13)).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            let (got, want) = t.await.unwrap();
            assert_eq!(got, want, "request {i}");
        }
        assert!(batch.lock().is_empty());
        assert!(batch.passes.load(Ordering::Relaxed) < 100);
    }

    /// A request dropped while its segment waits takes it out of the queue: no clear bytes
    /// are kept for nobody, and the next pass does not encrypt them.
    #[tokio::test(flavor = "current_thread")]
    async fn a_request_that_goes_away_takes_its_segment_out() {
        let batch = CbcBatch::default();
        let key = Arc::new(MultiKey::new(&[3; 16]).unwrap());
        {
            let mut pending = Box::pin(batch.encrypt(key.clone(), [0; 16], segment(1)));
            // First poll: queued, then yields to the other requests.
            assert!(futures_poll_once(pending.as_mut()).await.is_none());
            assert_eq!(batch.lock().len(), 1);
        }
        assert!(batch.lock().is_empty());
        assert!(!batch.pass());
    }

    /// Polls `f` once.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut f: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }))
        .await
    }
}
