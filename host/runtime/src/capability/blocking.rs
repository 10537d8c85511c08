//! WASI calls that wait, bounded by the call's deadline.
//!
//! Epoch interruption stops a plugin only while its wasm runs: a plugin
//! that sleeps (`monotonic-clock.subscribe-duration` then `poll`) or waits
//! on a stream waits inside the host, where no epoch check happens.
//! wasmtime-wasi's synchronous `wasi:io` blocks on a future until it is
//! ready; here the same futures are raced against the deadline of the call
//! in progress, and the call traps with [`DeadlineExceeded`] when it
//! passes. The pipeline then reports a timeout naming the plugin and the
//! call, as for a loop.
//!
//! These implementations shadow wasmtime-wasi's `wasi:io/poll` and
//! `wasi:io/streams` in the linker; everything that does not wait is
//! passed through to wasmtime-wasi unchanged.

use std::future::Future;
use std::time::Instant;

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::io::{poll, streams};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, DynPollable, StreamError, StreamResult};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll as async_poll;
use wasmtime_wasi_io::bindings::wasi::io::streams as async_streams;

use crate::capability::HostState;

/// The trap a waiting WASI call ends with when the call's deadline passes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call's deadline passed while the plugin was waiting")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// `wasi:io` with the deadline of the call in progress.
pub(crate) struct Bounded<'a> {
    table: &'a mut ResourceTable,
    deadline: Option<Instant>,
}

/// Run `wait` until it is done or the deadline passes.
fn until<T>(
    deadline: Option<Instant>,
    wait: impl Future<Output = T>,
) -> Result<T, DeadlineExceeded> {
    in_tokio(async move {
        match deadline {
            Some(at) => tokio::time::timeout_at(at.into(), wait)
                .await
                .map_err(|_| DeadlineExceeded),
            None => Ok(wait.await),
        }
    })
}

fn stream_until<T>(
    deadline: Option<Instant>,
    wait: impl Future<Output = StreamResult<T>>,
) -> StreamResult<T> {
    until(deadline, wait).map_err(|e| StreamError::Trap(e.into()))?
}

impl poll::Host for Bounded<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let deadline = self.deadline;
        until(deadline, async_poll::Host::poll(self.table, pollables))?
    }
}

impl poll::HostPollable for Bounded<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        let deadline = self.deadline;
        until(
            deadline,
            async_poll::HostPollable::block(self.table, pollable),
        )?
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}

impl streams::Host for Bounded<'_> {
    fn convert_stream_error(&mut self, err: StreamError) -> wasmtime::Result<streams::StreamError> {
        streams::Host::convert_stream_error(self.table, err)
    }
}

impl streams::HostInputStream for Bounded<'_> {
    fn drop(&mut self, stream: Resource<DynInputStream>) -> wasmtime::Result<()> {
        let deadline = self.deadline;
        until(
            deadline,
            async_streams::HostInputStream::drop(self.table, stream),
        )?
    }

    fn read(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<Vec<u8>> {
        streams::HostInputStream::read(self.table, stream, len)
    }

    fn blocking_read(
        &mut self,
        stream: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<Vec<u8>> {
        let deadline = self.deadline;
        stream_until(
            deadline,
            async_streams::HostInputStream::blocking_read(self.table, stream, len),
        )
    }

    fn skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        streams::HostInputStream::skip(self.table, stream, len)
    }

    fn blocking_skip(&mut self, stream: Resource<DynInputStream>, len: u64) -> StreamResult<u64> {
        let deadline = self.deadline;
        stream_until(
            deadline,
            async_streams::HostInputStream::blocking_skip(self.table, stream, len),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynInputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostInputStream::subscribe(self.table, stream)
    }
}

impl streams::HostOutputStream for Bounded<'_> {
    fn drop(&mut self, stream: Resource<DynOutputStream>) -> wasmtime::Result<()> {
        let deadline = self.deadline;
        until(
            deadline,
            async_streams::HostOutputStream::drop(self.table, stream),
        )?
    }

    fn check_write(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<u64> {
        streams::HostOutputStream::check_write(self.table, stream)
    }

    fn write(&mut self, stream: Resource<DynOutputStream>, bytes: Vec<u8>) -> StreamResult<()> {
        streams::HostOutputStream::write(self.table, stream, bytes)
    }

    fn blocking_write_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        bytes: Vec<u8>,
    ) -> StreamResult<()> {
        let deadline = self.deadline;
        stream_until(
            deadline,
            async_streams::HostOutputStream::blocking_write_and_flush(self.table, stream, bytes),
        )
    }

    fn blocking_write_zeroes_and_flush(
        &mut self,
        stream: Resource<DynOutputStream>,
        len: u64,
    ) -> StreamResult<()> {
        let deadline = self.deadline;
        stream_until(
            deadline,
            async_streams::HostOutputStream::blocking_write_zeroes_and_flush(
                self.table, stream, len,
            ),
        )
    }

    fn subscribe(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        streams::HostOutputStream::subscribe(self.table, stream)
    }

    fn write_zeroes(&mut self, stream: Resource<DynOutputStream>, len: u64) -> StreamResult<()> {
        streams::HostOutputStream::write_zeroes(self.table, stream, len)
    }

    fn flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        streams::HostOutputStream::flush(self.table, stream)
    }

    fn blocking_flush(&mut self, stream: Resource<DynOutputStream>) -> StreamResult<()> {
        let deadline = self.deadline;
        stream_until(
            deadline,
            async_streams::HostOutputStream::blocking_flush(self.table, stream),
        )
    }

    fn splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        streams::HostOutputStream::splice(self.table, dst, src, len)
    }

    fn blocking_splice(
        &mut self,
        dst: Resource<DynOutputStream>,
        src: Resource<DynInputStream>,
        len: u64,
    ) -> StreamResult<u64> {
        let deadline = self.deadline;
        stream_until(
            deadline,
            async_streams::HostOutputStream::blocking_splice(self.table, dst, src, len),
        )
    }
}

struct HasBounded;

impl HasData for HasBounded {
    type Data<'a> = Bounded<'a>;
}

fn bounded(state: &mut HostState) -> Bounded<'_> {
    Bounded {
        deadline: state.deadline,
        table: &mut state.table,
    }
}

/// Link `wasi:io/poll` and `wasi:io/streams` over wasmtime-wasi's, with
/// every wait bounded by the call's deadline.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    poll::add_to_linker::<HostState, HasBounded>(linker, bounded)?;
    streams::add_to_linker::<HostState, HasBounded>(linker, bounded)?;
    linker.allow_shadowing(false);
    Ok(())
}
