//! Shared test helpers: an in-memory duplex pipe (embedded-io on the device end, std::io with
//! a read timeout on the host end), a capturing port, and a deterministic RNG.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use attn_link::frame::{Decoder, Event, MAX_FRAME};

/// One end of a duplex byte pipe.
pub struct PipeEnd {
    rx: Receiver<Vec<u8>>,
    tx: Sender<Vec<u8>>,
    pending: VecDeque<u8>,
}

/// Two connected ends (device, host).
pub fn pipe() -> (PipeEnd, PipeEnd) {
    let (a_tx, b_rx) = channel();
    let (b_tx, a_rx) = channel();
    (
        PipeEnd {
            rx: a_rx,
            tx: a_tx,
            pending: VecDeque::new(),
        },
        PipeEnd {
            rx: b_rx,
            tx: b_tx,
            pending: VecDeque::new(),
        },
    )
}

impl PipeEnd {
    fn drain(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.pending.len());
        for (slot, b) in buf.iter_mut().zip(self.pending.drain(..n)) {
            *slot = b;
        }
        n
    }
}

impl embedded_io::ErrorType for PipeEnd {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for PipeEnd {
    /// Blocks; 0 once the other end is gone.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.pending.is_empty() {
            match self.rx.recv() {
                Ok(v) => self.pending.extend(v),
                Err(_) => return Ok(0),
            }
        }
        Ok(self.drain(buf))
    }
}

impl embedded_io::Write for PipeEnd {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        // The host may be gone: drop the bytes (a UART does not know either).
        let _ = self.tx.send(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl std::io::Read for PipeEnd {
    /// Returns `TimedOut` after 20 ms without data, 0 once the other end is gone.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(v) => self.pending.extend(v),
                Err(RecvTimeoutError::Timeout) => return Err(std::io::ErrorKind::TimedOut.into()),
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        Ok(self.drain(buf))
    }
}

impl std::io::Write for PipeEnd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .send(buf.to_vec())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port whose reads come from a fixed byte string and whose writes are captured.
pub struct Capture {
    pub input: VecDeque<u8>,
    pub output: Vec<u8>,
    /// Bytes per read (exercises chunking).
    pub chunk: usize,
}

impl Capture {
    pub fn new(input: &[u8], chunk: usize) -> Self {
        Capture {
            input: input.iter().copied().collect(),
            output: Vec::new(),
            chunk: chunk.max(1),
        }
    }
}

impl embedded_io::ErrorType for Capture {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Capture {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let n = buf.len().min(self.chunk).min(self.input.len());
        for (slot, b) in buf.iter_mut().zip(self.input.drain(..n)) {
            *slot = b;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// A decoded response frame: (type, seq, payload). Panics on any byte that is not part of a
/// valid frame: a server must only ever write whole frames.
pub fn frames(bytes: &[u8]) -> Vec<(u8, u8, Vec<u8>)> {
    let mut d = Box::new(Decoder::<MAX_FRAME>::new());
    let mut out = Vec::new();
    for &b in bytes {
        d.push(b, &mut |ev| match ev {
            Event::Frame(f) => out.push((f.ty, f.seq, f.payload.to_vec())),
            e => panic!("server wrote a bad frame: {e:?}"),
        });
    }
    assert_eq!(d.skipped(), 0, "server wrote bytes outside frames");
    assert_eq!(d.pending(), 0, "server wrote a partial frame");
    out
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
