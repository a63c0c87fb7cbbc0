//! The host side (feature `std`): [`Client`] sends requests over any `std::io::Read + Write`
//! (a serial port, a TCP socket to QEMU's UART, an in-memory pipe) and waits for the matching
//! responses, with a timeout.
//!
//! The port's reads should return within a short time (a read timeout: `TcpStream::
//! set_read_timeout`, a tty in raw mode with `VTIME`): a read that fails with `TimedOut` or
//! `WouldBlock` is retried until the request's deadline.

use std::boxed::Box;
use std::fmt;
use std::format;
use std::string::{String, ToString};
use std::time::{Duration, Instant};
use std::vec::Vec;

use crate::frame::{self, Decoder, Event, MAX_FRAME, VERSION};
use crate::msg::{ty, ErrorCode, Ids, MsgError, Request, Response};

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// No complete answer before the deadline.
    Timeout {
        /// How long it waited.
        waited: Duration,
        /// Bytes received that were not part of a valid frame.
        garbage: u64,
    },
    /// The port failed.
    Io(std::io::Error),
    /// The port closed.
    Closed,
    /// The device answered with an error frame.
    Device {
        /// What failed.
        code: ErrorCode,
        /// A value that tells more.
        detail: u32,
    },
    /// The device answered something that is not the expected response.
    Protocol(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Timeout { waited, garbage: 0 } => write!(
                f,
                "device did not answer within {:.3} s",
                waited.as_secs_f64()
            ),
            ClientError::Timeout { waited, garbage } => write!(
                f,
                "device answered garbage ({garbage} bytes that are not protocol frames) and no valid response within {:.3} s",
                waited.as_secs_f64()
            ),
            ClientError::Io(e) => write!(f, "serial link: {e}"),
            ClientError::Closed => f.write_str("serial link closed by the device"),
            ClientError::Device { code, detail } => {
                write!(f, "device error: {} (code {}, detail {detail})", code.describe(), *code as u8)
            }
            ClientError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// An owned response frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedFrame {
    /// Message type.
    pub ty: u8,
    /// Sequence number.
    pub seq: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

impl OwnedFrame {
    /// Parse the payload as a response.
    pub fn response(&self) -> Result<Response<'_>, ClientError> {
        Response::parse(self.ty, &self.payload).map_err(|e| {
            ClientError::Protocol(format!(
                "malformed response of type {:#04x}: {e:?}",
                self.ty
            ))
        })
    }
}

/// Model info as the device reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// 0 ViT, 1 decoder LM, 2 encoder–decoder.
    pub kind: u8,
    /// Unit of every time (`instructions`, `cycles`, `us`).
    pub unit: &'static str,
    /// Largest request payload.
    pub max_payload: usize,
    /// Blob length.
    pub blob_len: u32,
    /// Blob checksum (FNV-1a 32 from its header).
    pub checksum: u32,
    /// Longest prompt + new tokens.
    pub max_ids: usize,
    /// Model name.
    pub name: String,
}

/// Generated ids and timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Prompt + generated ids.
    pub ids: Vec<u32>,
    /// Encoder time.
    pub encode: u64,
    /// Decode time.
    pub decode: u64,
    /// Tokens fed.
    pub tokens: u32,
}

/// A client on port `T`.
pub struct Client<T> {
    io: T,
    rx: Box<Decoder<MAX_FRAME>>,
    seq: u8,
    timeout: Duration,
    max_payload: usize,
    frames: Vec<OwnedFrame>,
    errors: u64,
    resync: bool,
}

impl<T: std::io::Read + std::io::Write> Client<T> {
    /// A client with `timeout` per response frame.
    pub fn new(io: T, timeout: Duration) -> Self {
        Client {
            io,
            rx: Box::new(Decoder::new()),
            seq: 0,
            timeout,
            max_payload: MAX_FRAME - frame::OVERHEAD,
            frames: Vec::new(),
            errors: 0,
            resync: false,
        }
    }

    /// The timeout per response frame.
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// The port.
    pub fn io_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// Write raw bytes (tests: garbage, corrupt frames).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(bytes).map_err(ClientError::Io)?;
        self.io.flush().map_err(ClientError::Io)
    }

    /// Send `req` with a new sequence number; returns the number. After a request that timed
    /// out, `MAX_FRAME` zero bytes go first: they complete any partial frame the device may be
    /// holding (a truncated request), which then fails its CRC, so the device is listening for
    /// a new frame again.
    pub fn send(&mut self, req: &Request<'_>) -> Result<u8, ClientError> {
        if self.resync {
            self.send_raw(&[0u8; MAX_FRAME])?;
            self.resync = false;
        }
        self.seq = self.seq.wrapping_add(1);
        let mut payload = std::vec![0u8; self.max_payload];
        let n = req.encode(&mut payload).map_err(|e| match e {
            MsgError::TooLarge => ClientError::Protocol(format!(
                "request does not fit one frame ({} bytes at most)",
                self.max_payload
            )),
            e => ClientError::Protocol(format!("{e:?}")),
        })?;
        let mut buf = std::vec![0u8; n + frame::OVERHEAD];
        frame::encode(req.ty(), self.seq, &payload[..n], &mut buf)
            .map_err(|e| ClientError::Protocol(format!("{e:?}")))?;
        self.send_raw(&buf)?;
        Ok(self.seq)
    }

    /// Next frame with sequence number `seq` (others — stale answers, error frames for
    /// garbage — are dropped), within the timeout.
    pub fn receive(&mut self, seq: u8) -> Result<OwnedFrame, ClientError> {
        let start = Instant::now();
        let garbage0 = self.rx.skipped() + self.errors;
        loop {
            if let Some(i) = self.frames.iter().position(|f| f.seq == seq) {
                let f = self.frames.remove(i);
                if f.ty == ty::ERROR {
                    if let Ok(Response::Error { code, detail }) = f.response() {
                        return Err(ClientError::Device { code, detail });
                    }
                }
                return Ok(f);
            }
            self.frames.clear();
            let waited = start.elapsed();
            if waited >= self.timeout {
                self.resync = true;
                return Err(ClientError::Timeout {
                    waited,
                    garbage: (self.rx.skipped() + self.errors).saturating_sub(garbage0),
                });
            }
            let mut chunk = [0u8; 512];
            let n = match self.io.read(&mut chunk) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(ClientError::Io(e)),
            };
            let frames = &mut self.frames;
            let errors = &mut self.errors;
            for &b in &chunk[..n] {
                self.rx.push(b, &mut |ev| match ev {
                    Event::Frame(f) if f.version == VERSION => frames.push(OwnedFrame {
                        ty: f.ty,
                        seq: f.seq,
                        payload: f.payload.to_vec(),
                    }),
                    _ => *errors += 1,
                });
            }
        }
    }

    fn expect(&mut self, seq: u8, want: u8) -> Result<OwnedFrame, ClientError> {
        let f = self.receive(seq)?;
        if f.ty != want {
            return Err(ClientError::Protocol(format!(
                "expected a response of type {want:#04x}, got {:#04x}",
                f.ty
            )));
        }
        Ok(f)
    }

    /// The model the device holds.
    pub fn info(&mut self) -> Result<DeviceInfo, ClientError> {
        let seq = self.send(&Request::Info)?;
        let f = self.expect(seq, ty::INFO_REPLY)?;
        match f.response()? {
            Response::Info(i) => {
                let info = DeviceInfo {
                    kind: i.kind,
                    unit: crate::msg::unit_name(i.unit),
                    max_payload: i.max_payload as usize,
                    blob_len: i.blob_len,
                    checksum: i.checksum,
                    max_ids: i.max_ids as usize,
                    name: i.name.to_string(),
                };
                self.max_payload = self.max_payload.min(info.max_payload);
                Ok(info)
            }
            _ => Err(ClientError::Protocol("info reply expected".into())),
        }
    }

    /// Classify one int8 image: (logits, time).
    pub fn classify(&mut self, image: &[i8]) -> Result<(Vec<i8>, u64), ClientError> {
        let seq = self.send(&Request::Classify { image })?;
        let f = self.expect(seq, ty::LOGITS)?;
        match f.response()? {
            Response::Logits { time, logits } => Ok((logits.to_vec(), time)),
            _ => Err(ClientError::Protocol("logits expected".into())),
        }
    }

    /// Greedy generation of up to `max_new` tokens after `prompt` (encoder–decoder: `image`).
    pub fn generate(
        &mut self,
        prompt: &[u32],
        max_new: u16,
        image: &[i8],
    ) -> Result<Generation, ClientError> {
        let seq = self.send(&Request::Generate {
            max_new,
            prompt: Ids::Words(prompt),
            image,
        })?;
        let f = self.expect(seq, ty::IDS)?;
        match f.response()? {
            Response::Ids {
                encode,
                decode,
                tokens,
                ids,
            } => Ok(Generation {
                ids: ids.iter().collect(),
                encode,
                decode,
                tokens,
            }),
            _ => Err(ClientError::Protocol("ids expected".into())),
        }
    }

    /// Teacher-forced int8 logits of every position of `ids`: (rows, time).
    pub fn teacher_force(
        &mut self,
        ids: &[u32],
        image: &[i8],
    ) -> Result<(Vec<Vec<i8>>, u64), ClientError> {
        let seq = self.send(&Request::TeacherForce {
            ids: Ids::Words(ids),
            image,
        })?;
        let mut rows = Vec::new();
        loop {
            let f = self.receive(seq)?;
            match f.response()? {
                Response::Row { position, logits } if position as usize == rows.len() => {
                    rows.push(logits.to_vec())
                }
                Response::Done { time, rows: n } if n as usize == rows.len() => {
                    return Ok((rows, time))
                }
                r => {
                    return Err(ClientError::Protocol(format!(
                        "unexpected response in a teacher-forced pass: {r:?}"
                    )))
                }
            }
        }
    }
}
