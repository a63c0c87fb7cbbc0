//! The device side: [`Server`] reads frames from any `embedded_io` port, hands each request
//! to a [`Handler`] and writes its responses; framing faults are answered with error frames
//! and the server keeps serving.

use embedded_io::{Read, Write};

use crate::frame::{self, Decoder, Event, VERSION};
use crate::msg::{ErrorCode, MsgError, Request, Response};

/// Why a request failed: sent back as a [`Response::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Fault {
    /// What failed.
    pub code: ErrorCode,
    /// A value that tells more.
    pub detail: u32,
}

impl Fault {
    /// A fault with `code` and `detail`.
    pub const fn new(code: ErrorCode, detail: u32) -> Self {
        Fault { code, detail }
    }
}

/// Where a [`Handler`] sends its responses (one or more per request).
pub trait Reply {
    /// Send one response frame.
    fn send(&mut self, r: &Response<'_>) -> Result<(), Fault>;
}

/// Answers requests: the part that knows the model (see `model::ModelHandler` with the
/// `model` feature).
pub trait Handler {
    /// Answer `req` with one or more responses through `reply`. An `Err` is sent as an error
    /// frame (after any responses already sent).
    fn handle(&mut self, req: &Request<'_>, reply: &mut dyn Reply) -> Result<(), Fault>;
}

/// Counters of what a [`Server`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered without error.
    pub served: u32,
    /// Error frames sent (framing faults and failed requests).
    pub errors: u32,
}

/// A port whose write failed: the server stops (the caller may make a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServeError<E> {
    /// Reading the port failed.
    Read(E),
    /// Writing the port failed.
    Write(E),
}

struct Tx<'a, W: Write, const N: usize> {
    io: &'a mut W,
    buf: &'a mut [u8; N],
    seq: u8,
    failed: Option<W::Error>,
}

impl<W: Write, const N: usize> Tx<'_, W, N> {
    fn frame(&mut self, r: &Response<'_>) -> Result<(), Fault> {
        if self.failed.is_some() {
            return Err(Fault::new(ErrorCode::TooLarge, 0));
        }
        let cap = N.saturating_sub(frame::TRAILER);
        let body = self.buf.get_mut(frame::HEADER..cap).unwrap_or(&mut []);
        let n = match r.encode(body) {
            Ok(n) => n,
            Err(_) => return Err(Fault::new(ErrorCode::TooLarge, 0)),
        };
        let total = match encode_in_place(self.buf, r.ty(), self.seq, n) {
            Some(t) => t,
            None => return Err(Fault::new(ErrorCode::TooLarge, n as u32)),
        };
        let bytes = self.buf.get(..total).unwrap_or(&[]);
        if let Err(e) = self.io.write_all(bytes).and_then(|_| self.io.flush()) {
            self.failed = Some(e);
            return Err(Fault::new(ErrorCode::TooLarge, 0));
        }
        Ok(())
    }
}

/// Write the header and CRC around a payload of `n` bytes already at `buf[HEADER..]`.
fn encode_in_place(buf: &mut [u8], ty: u8, seq: u8, n: usize) -> Option<usize> {
    let total = n.checked_add(frame::OVERHEAD)?;
    let len = u16::try_from(n).ok()?.to_le_bytes();
    let f = buf.get_mut(..total)?;
    let (head, rest) = f.split_at_mut_checked(frame::HEADER)?;
    head.copy_from_slice(&[
        frame::MAGIC[0],
        frame::MAGIC[1],
        VERSION,
        ty,
        seq,
        len[0],
        len[1],
    ]);
    let (body, crc) = rest.split_at_mut_checked(n)?;
    let mut c = frame::Crc::new();
    c.update(head.get(2..).unwrap_or(&[]));
    c.update(body);
    crc.copy_from_slice(&c.finish().to_le_bytes());
    Some(total)
}

impl<W: Write, const N: usize> Reply for Tx<'_, W, N> {
    fn send(&mut self, r: &Response<'_>) -> Result<(), Fault> {
        self.frame(r)
    }
}

/// Serves requests over a port `IO` with frames of at most `N` bytes (payload up to
/// `N - frame::OVERHEAD`); two buffers of `N` bytes (receive, transmit).
pub struct Server<IO, const N: usize> {
    io: IO,
    rx: Decoder<N>,
    tx: [u8; N],
    stats: Stats,
}

impl<IO: Read + Write, const N: usize> Server<IO, N> {
    /// A server on `io`.
    pub fn new(io: IO) -> Self {
        Server {
            io,
            rx: Decoder::new(),
            tx: [0; N],
            stats: Stats::default(),
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes skipped as garbage so far.
    pub fn skipped(&self) -> u64 {
        self.rx.skipped()
    }

    /// The port back.
    pub fn into_inner(self) -> IO {
        self.io
    }

    /// Mutable access to the port.
    pub fn io_mut(&mut self) -> &mut IO {
        &mut self.io
    }

    /// Read once from the port (blocking until at least one byte or end of input) and serve
    /// every request it completes. Returns `Ok(false)` at end of input.
    pub fn poll(&mut self, handler: &mut dyn Handler) -> Result<bool, ServeError<IO::Error>> {
        let mut chunk = [0u8; 64];
        let n = self.io.read(&mut chunk).map_err(ServeError::Read)?;
        if n == 0 {
            return Ok(false);
        }
        self.feed(chunk.get(..n).unwrap_or(&[]), handler)?;
        Ok(true)
    }

    /// Serve until end of input (a UART never ends: this is the firmware's main loop).
    pub fn run(&mut self, handler: &mut dyn Handler) -> Result<(), ServeError<IO::Error>> {
        while self.poll(handler)? {}
        Ok(())
    }

    /// Drop a partial frame (call after an idle gap on the line); frames found in its bytes
    /// are served.
    pub fn abort_partial(
        &mut self,
        handler: &mut dyn Handler,
    ) -> Result<(), ServeError<IO::Error>> {
        let Server { io, rx, tx, stats } = self;
        let mut failed = None;
        rx.abort_partial(&mut |ev| dispatch(ev, io, tx, stats, handler, &mut failed));
        match failed {
            Some(e) => Err(ServeError::Write(e)),
            None => Ok(()),
        }
    }

    /// Serve the requests completed by `bytes` (as if read from the port).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        handler: &mut dyn Handler,
    ) -> Result<(), ServeError<IO::Error>> {
        let Server { io, rx, tx, stats } = self;
        let mut failed = None;
        for &b in bytes {
            rx.push(b, &mut |ev| {
                dispatch(ev, io, tx, stats, handler, &mut failed)
            });
            if let Some(e) = failed.take() {
                return Err(ServeError::Write(e));
            }
        }
        Ok(())
    }
}

fn dispatch<IO: Write, const N: usize>(
    ev: Event<'_>,
    io: &mut IO,
    buf: &mut [u8; N],
    stats: &mut Stats,
    handler: &mut dyn Handler,
    failed: &mut Option<IO::Error>,
) {
    if failed.is_some() {
        return;
    }
    let (seq, result) = match ev {
        Event::Oversized { seq, len } => (seq, Err(Fault::new(ErrorCode::Oversized, len as u32))),
        Event::BadCrc { seq } => (seq, Err(Fault::new(ErrorCode::BadCrc, 0))),
        Event::Frame(f) if f.version != VERSION => (
            f.seq,
            Err(Fault::new(ErrorCode::BadVersion, f.version as u32)),
        ),
        Event::Frame(f) => match Request::parse(f.ty, f.payload) {
            Err(MsgError::UnknownType(t)) => {
                (f.seq, Err(Fault::new(ErrorCode::UnknownType, t as u32)))
            }
            Err(_) => (f.seq, Err(Fault::new(ErrorCode::Malformed, f.ty as u32))),
            Ok(req) => {
                let mut tx = Tx {
                    io: &mut *io,
                    buf: &mut *buf,
                    seq: f.seq,
                    failed: None,
                };
                let r = handler.handle(&req, &mut tx);
                if let Some(e) = tx.failed.take() {
                    *failed = Some(e);
                    return;
                }
                (f.seq, r)
            }
        },
    };
    let mut tx = Tx {
        io,
        buf,
        seq,
        failed: None,
    };
    match result {
        Ok(()) => stats.served = stats.served.wrapping_add(1),
        Err(fault) => {
            stats.errors = stats.errors.wrapping_add(1);
            let _ = tx.frame(&Response::Error {
                code: fault.code,
                detail: fault.detail,
            });
            if let Some(e) = tx.failed.take() {
                *failed = Some(e);
            }
        }
    }
}
