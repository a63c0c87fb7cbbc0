//! Framing: sync bytes, version, message type, sequence number, length, payload, CRC-32.
//!
//! ```text
//! offset  size  field
//! 0       2     MAGIC (0xA7 0x4C)
//! 2       1     VERSION
//! 3       1     message type
//! 4       1     sequence number (a response echoes its request's)
//! 5       2     payload length, little-endian
//! 7       len   payload
//! 7+len   4     CRC-32 (IEEE, reflected, as zlib) of bytes 2 .. 7+len, little-endian
//! ```
//!
//! [`Decoder`] is a bounded streaming decoder: it takes one byte at a time, skips bytes that
//! cannot start a frame, and on a frame that fails (bad CRC, length over its capacity) reports
//! an error and rescans the bytes it buffered, so that a frame sent after a truncated one is
//! still found.

/// Sync bytes that start every frame.
pub const MAGIC: [u8; 2] = [0xA7, 0x4C];
/// Protocol version carried by every frame.
pub const VERSION: u8 = 1;
/// Bytes before the payload.
pub const HEADER: usize = 7;
/// Bytes after the payload (CRC-32).
pub const TRAILER: usize = 4;
/// Framing bytes around a payload.
pub const OVERHEAD: usize = HEADER + TRAILER;
/// Largest frame the shipped firmware and the host client accept (payload up to 4096 bytes).
pub const MAX_FRAME: usize = 4096 + OVERHEAD;

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

/// Incremental CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial and final XOR
/// 0xFFFFFFFF): the zlib / PNG / Ethernet CRC.
#[derive(Debug, Clone, Copy)]
pub struct Crc(u32);

impl Default for Crc {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc {
    /// Start a CRC.
    pub const fn new() -> Self {
        Crc(0xFFFF_FFFF)
    }
    /// Add bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = CRC_TABLE[((self.0 ^ b as u32) & 0xFF) as usize] ^ (self.0 >> 8);
        }
    }
    /// The CRC of everything added.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

/// CRC-32 of `bytes` (see [`Crc`]): `crc32(b"123456789") == 0xCBF43926`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc::new();
    c.update(bytes);
    c.finish()
}

/// Why framing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The output buffer cannot hold the frame.
    TooLong {
        /// Bytes the frame needs.
        needs: usize,
        /// Bytes available.
        have: usize,
    },
}

/// Write one frame into `out`; returns its length.
pub fn encode(ty: u8, seq: u8, payload: &[u8], out: &mut [u8]) -> Result<usize, FrameError> {
    let total = payload.len() + OVERHEAD;
    let have = out.len();
    let len =
        u16::try_from(payload.len()).map_err(|_| FrameError::TooLong { needs: total, have })?;
    let out = out
        .get_mut(..total)
        .ok_or(FrameError::TooLong { needs: total, have })?;
    let too_long = FrameError::TooLong { needs: total, have };
    let (head, rest) = out.split_at_mut_checked(HEADER).ok_or(too_long)?;
    let (body, crc) = rest.split_at_mut_checked(payload.len()).ok_or(too_long)?;
    let l = len.to_le_bytes();
    head.copy_from_slice(&[MAGIC[0], MAGIC[1], VERSION, ty, seq, l[0], l[1]]);
    body.copy_from_slice(payload);
    // The CRC covers version .. payload: bytes 2 .. total - 4.
    let mut c = Crc::new();
    c.update(head.get(2..).unwrap_or(&[]));
    c.update(body);
    crc.copy_from_slice(&c.finish().to_le_bytes());
    Ok(total)
}

/// One complete frame whose CRC checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Protocol version in the frame (may differ from [`VERSION`]: the caller decides).
    pub version: u8,
    /// Message type.
    pub ty: u8,
    /// Sequence number.
    pub seq: u8,
    /// Payload.
    pub payload: &'a [u8],
}

/// What the decoder found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A frame with a valid CRC.
    Frame(Frame<'a>),
    /// A frame header whose length exceeds the decoder's capacity (its sequence number).
    Oversized {
        /// Sequence number from the header.
        seq: u8,
        /// Declared payload length.
        len: usize,
    },
    /// A frame whose CRC did not match (its header's sequence number).
    BadCrc {
        /// Sequence number from the header (may itself be corrupt).
        seq: u8,
    },
}

enum Status {
    Need,
    Skip,
    Oversized(u8, usize),
    BadCrc(u8),
    Done(usize),
}

/// Bounded streaming frame decoder holding at most `N` bytes (the largest frame it accepts,
/// payload up to `N - OVERHEAD`).
pub struct Decoder<const N: usize> {
    buf: [u8; N],
    fill: usize,
    skipped: u64,
}

impl<const N: usize> Default for Decoder<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Decoder<N> {
    /// Largest payload this decoder accepts.
    pub const MAX_PAYLOAD: usize = N.saturating_sub(OVERHEAD);

    /// An empty decoder.
    pub const fn new() -> Self {
        Decoder {
            buf: [0; N],
            fill: 0,
            skipped: 0,
        }
    }

    /// Bytes skipped so far because they could not start a frame (garbage, line noise).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Bytes of a partial frame held.
    pub fn pending(&self) -> usize {
        self.fill
    }

    /// Drop a partial frame (for example after an idle timeout on the line) and rescan the
    /// bytes it held for the start of another frame; events found are handed to `emit`.
    pub fn abort_partial(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        if self.fill > 0 {
            self.drop_front();
            self.process(emit);
        }
    }

    /// Feed one byte; every event it completes is handed to `emit` (a byte can complete more
    /// than one when a failed frame's buffered bytes are rescanned).
    pub fn push(&mut self, byte: u8, emit: &mut dyn FnMut(Event<'_>)) {
        if self.fill == 0 && byte != MAGIC[0] {
            self.skipped += 1;
            return;
        }
        match self.buf.get_mut(self.fill) {
            Some(slot) => {
                *slot = byte;
                self.fill += 1;
            }
            None => {
                // Unreachable while N >= HEADER (a full buffer is always resolved), but keep
                // going rather than panic: drop what is held.
                self.skipped += self.fill as u64;
                self.fill = 0;
                return;
            }
        }
        self.process(emit);
    }

    fn status(&self) -> Status {
        let b = self.buf.get(..self.fill).unwrap_or(&[]);
        match b {
            [] => Status::Need,
            [m0, ..] if *m0 != MAGIC[0] => Status::Skip,
            [_, m1, ..] if *m1 != MAGIC[1] => Status::Skip,
            [_, _, _, _, seq, l0, l1, rest @ ..] => {
                let len = u16::from_le_bytes([*l0, *l1]) as usize;
                if len > Self::MAX_PAYLOAD || N < OVERHEAD {
                    return Status::Oversized(*seq, len);
                }
                if rest.len() < len + TRAILER {
                    return Status::Need;
                }
                let total = HEADER + len + TRAILER;
                let body = b.get(2..HEADER + len).unwrap_or(&[]);
                let crc = b.get(HEADER + len..total).unwrap_or(&[]);
                let want = <[u8; 4]>::try_from(crc).ok().map(u32::from_le_bytes);
                if want == Some(crc32(body)) {
                    Status::Done(total)
                } else {
                    Status::BadCrc(*seq)
                }
            }
            _ => Status::Need,
        }
    }

    /// Remove `n` bytes from the front, then skip to the next possible frame start.
    fn consume(&mut self, n: usize) {
        let n = n.min(self.fill);
        let start = self
            .buf
            .get(n..self.fill)
            .and_then(|t| t.iter().position(|&b| b == MAGIC[0]))
            .map_or(self.fill, |p| n + p);
        self.skipped += start.saturating_sub(n) as u64;
        // Move the tail to the front (by hand: no panicking range checks).
        let mut to = 0;
        for from in start..self.fill {
            let b = self.buf.get(from).copied().unwrap_or(0);
            if let Some(slot) = self.buf.get_mut(to) {
                *slot = b;
            }
            to += 1;
        }
        self.fill = to;
    }

    fn drop_front(&mut self) {
        self.skipped += 1;
        self.consume(1);
    }

    fn process(&mut self, emit: &mut dyn FnMut(Event<'_>)) {
        loop {
            match self.status() {
                Status::Need => return,
                Status::Skip => self.drop_front(),
                Status::Oversized(seq, len) => {
                    emit(Event::Oversized { seq, len });
                    self.drop_front();
                }
                Status::BadCrc(seq) => {
                    emit(Event::BadCrc { seq });
                    self.drop_front();
                }
                Status::Done(total) => {
                    if let Some(f) = self.buf.get(..total) {
                        let len = total - OVERHEAD;
                        emit(Event::Frame(Frame {
                            version: f.get(2).copied().unwrap_or(0),
                            ty: f.get(3).copied().unwrap_or(0),
                            seq: f.get(4).copied().unwrap_or(0),
                            payload: f.get(HEADER..HEADER + len).unwrap_or(&[]),
                        }));
                    }
                    self.consume(total);
                }
            }
        }
    }
}
