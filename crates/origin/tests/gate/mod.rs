//! An in-memory object store whose ranged GETs (or listings) wait while its gate is closed:
//! it holds a storage read or listing open for as long as a test needs (no timing), so
//! concurrent requests for the same range are seen joining it, or start-up discovery is seen
//! still running. Shared by the tests that `mod gate;` it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result};
use tokio::sync::watch;

type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// [`InMemory`] with a gate on ranged GETs or on listings (`ObjectStore` written out by
/// hand: its `async_trait` methods as the boxed futures they expand to).
#[derive(Debug)]
pub struct Gated {
    inner: InMemory,
    open: watch::Sender<bool>,
    /// The gate is on listings rather than on ranged GETs.
    listings: bool,
    /// Gated requests that arrived while the gate was closed.
    pub held: AtomicUsize,
}

#[allow(dead_code)] // each test uses one of the two gates
impl Gated {
    /// A store whose ranged GETs wait at the gate.
    pub fn new() -> Gated {
        Gated { inner: InMemory::new(), open: watch::channel(true).0, listings: false, held: AtomicUsize::new(0) }
    }
    /// A store whose listings (`list_with_delimiter`) wait at the gate.
    pub fn on_listings() -> Gated {
        Gated { listings: true, ..Gated::new() }
    }
    pub fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }
    /// Waits while the gate is closed, counting the wait.
    async fn pass(&self) {
        let mut rx = self.open.subscribe();
        if !*rx.borrow_and_update() {
            self.held.fetch_add(1, Ordering::SeqCst);
            // The sender lives in `self`: waiting cannot fail while we borrow it.
            rx.wait_for(|open| *open).await.expect("gate sender alive");
        }
    }
}

impl fmt::Display for Gated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gated({})", self.inner)
    }
}

impl ObjectStore for Gated {
    fn put_opts<'a, 'b, 'c>(&'a self, location: &'b Path, payload: PutPayload, opts: PutOptions) -> Fut<'c, PutResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.inner.put_opts(location, payload, opts)
    }
    fn put_multipart_opts<'a, 'b, 'c>(&'a self, location: &'b Path, opts: PutMultipartOptions) -> Fut<'c, Box<dyn MultipartUpload>>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        self.inner.put_multipart_opts(location, opts)
    }
    fn get_opts<'a, 'b, 'c>(&'a self, location: &'b Path, options: GetOptions) -> Fut<'c, GetResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            if !self.listings && options.range.is_some() && !options.head {
                self.pass().await;
            }
            self.inner.get_opts(location, options).await
        })
    }
    fn delete_stream(&self, locations: BoxStream<'static, Result<Path>>) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    fn list_with_delimiter<'a, 'b, 'c>(&'a self, prefix: Option<&'b Path>) -> Fut<'c, ListResult>
    where
        'a: 'c,
        'b: 'c,
        Self: 'c,
    {
        Box::pin(async move {
            if self.listings {
                self.pass().await;
            }
            self.inner.list_with_delimiter(prefix).await
        })
    }
    fn copy_opts<'a, 'b, 'd, 'c>(&'a self, from: &'b Path, to: &'d Path, options: CopyOptions) -> Fut<'c, ()>
    where
        'a: 'c,
        'b: 'c,
        'd: 'c,
        Self: 'c,
    {
        self.inner.copy_opts(from, to, options)
    }
}
