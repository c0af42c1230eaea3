//! Single flight: a read of the same bytes as one already in flight waits for that one
//! instead of sending another request to the backend.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use futures::future::{BoxFuture, Shared};

use crate::Result;

/// What a flight reads: the path (or path and version), start and end.
pub(crate) type FlightKey = (String, u64, u64);

/// One remote range read, awaited by every request that wants the same bytes.
pub(crate) type Flight = Shared<BoxFuture<'static, Result<Bytes>>>;

/// Range reads in flight by key, shared by every clone of a store.
#[derive(Default)]
pub(crate) struct Flights(Mutex<HashMap<FlightKey, Flight>>);

impl Flights {
    /// Joins the flight for `key` (calling `joined`), or starts one with `start`. `done` is
    /// asked under the flights lock first: a flight that finished (and filled a cache) just
    /// before is answered from there, without a second read. Nothing is kept once the
    /// flight lands.
    pub(crate) async fn run(&self, key: FlightKey, done: impl Fn() -> Option<Bytes>, start: impl FnOnce() -> Flight, joined: impl FnOnce()) -> Result<Bytes> {
        let flight = {
            // A panic while holding this lock leaves the map consistent (every step is one
            // insert or remove), so a poisoned lock is used as it is.
            let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match m.get(&key) {
                Some(f) => {
                    joined();
                    f.clone()
                }
                None => {
                    if let Some(b) = done() {
                        return Ok(b);
                    }
                    let f = start();
                    m.insert(key.clone(), f.clone());
                    f
                }
            }
        };
        let r = flight.clone().await;
        // The first waiter to finish retires the flight; later requests start a fresh read.
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&key).is_some_and(|f| f.ptr_eq(&flight)) {
            m.remove(&key);
        }
        r
    }
}
