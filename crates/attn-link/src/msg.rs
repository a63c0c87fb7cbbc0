//! Request and response messages: their type bytes and payload layouts (all little-endian).
//!
//! | type | message | payload |
//! | --- | --- | --- |
//! | 0x01 | [`Request::Info`] | empty |
//! | 0x02 | [`Request::Classify`] | int8 image `[C][H][W]` |
//! | 0x03 | [`Request::Generate`] | max_new u16, prompt length u16, prompt ids u32…, int8 image (encoder–decoder) or nothing |
//! | 0x04 | [`Request::TeacherForce`] | ids length u16, ids u32…, int8 image (encoder–decoder) or nothing |
//! | 0x81 | [`Response::Info`] | kind u8, unit u8, max payload u16, blob length u32, blob checksum u32, max ids u16, name (UTF-8) |
//! | 0x82 | [`Response::Logits`] | time u64, int8 logits |
//! | 0x83 | [`Response::Ids`] | encode time u64, decode time u64, tokens fed u32, ids u32… |
//! | 0x84 | [`Response::Row`] | position u16, int8 logits |
//! | 0x85 | [`Response::Done`] | time u64, rows u32 |
//! | 0xEE | [`Response::Error`] | code u8, detail u32 |
//!
//! Times are in the unit the device announces in [`Info::unit`].

/// Message type bytes.
pub mod ty {
    /// [`super::Request::Info`].
    pub const INFO: u8 = 0x01;
    /// [`super::Request::Classify`].
    pub const CLASSIFY: u8 = 0x02;
    /// [`super::Request::Generate`].
    pub const GENERATE: u8 = 0x03;
    /// [`super::Request::TeacherForce`].
    pub const TEACHER_FORCE: u8 = 0x04;
    /// [`super::Response::Info`].
    pub const INFO_REPLY: u8 = 0x81;
    /// [`super::Response::Logits`].
    pub const LOGITS: u8 = 0x82;
    /// [`super::Response::Ids`].
    pub const IDS: u8 = 0x83;
    /// [`super::Response::Row`].
    pub const ROW: u8 = 0x84;
    /// [`super::Response::Done`].
    pub const DONE: u8 = 0x85;
    /// [`super::Response::Error`].
    pub const ERROR: u8 = 0xEE;
}

/// Error codes of an error frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ErrorCode {
    /// A frame's CRC did not match.
    BadCrc = 1,
    /// A frame declared a payload longer than the device accepts (detail: the length).
    Oversized = 2,
    /// A frame of another protocol version (detail: its version).
    BadVersion = 3,
    /// Unknown message type (detail: the type).
    UnknownType = 4,
    /// The payload does not parse as the message it claims to be.
    Malformed = 5,
    /// The request does not fit the model's kind (e.g. classify on a language model).
    WrongKind = 6,
    /// The input does not fit the model (image size, token id, positions; detail: a value).
    BadInput = 7,
    /// The model failed while running (detail: nothing specific).
    Model = 8,
    /// A response did not fit the device's frame buffer.
    TooLarge = 9,
    /// Any other code (received from a newer device).
    Other = 255,
}

impl ErrorCode {
    /// From the wire byte.
    pub fn from_u8(b: u8) -> Self {
        match b {
            1 => ErrorCode::BadCrc,
            2 => ErrorCode::Oversized,
            3 => ErrorCode::BadVersion,
            4 => ErrorCode::UnknownType,
            5 => ErrorCode::Malformed,
            6 => ErrorCode::WrongKind,
            7 => ErrorCode::BadInput,
            8 => ErrorCode::Model,
            9 => ErrorCode::TooLarge,
            _ => ErrorCode::Other,
        }
    }

    /// What the code means, in words.
    pub fn describe(self) -> &'static str {
        match self {
            ErrorCode::BadCrc => "frame CRC mismatch",
            ErrorCode::Oversized => "frame longer than the device accepts",
            ErrorCode::BadVersion => "protocol version mismatch",
            ErrorCode::UnknownType => "unknown message type",
            ErrorCode::Malformed => "malformed request payload",
            ErrorCode::WrongKind => "request does not fit the model's kind",
            ErrorCode::BadInput => "input does not fit the model",
            ErrorCode::Model => "model error while running",
            ErrorCode::TooLarge => "response too large for the device's frame buffer",
            ErrorCode::Other => "unknown error",
        }
    }
}

/// A list of `u32` ids: borrowed words (sending) or raw little-endian bytes (received).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids<'a> {
    /// Native words.
    Words(&'a [u32]),
    /// Little-endian bytes, 4 per id.
    Bytes(&'a [u8]),
}

impl<'a> Ids<'a> {
    /// Number of ids.
    pub fn len(&self) -> usize {
        match self {
            Ids::Words(w) => w.len(),
            Ids::Bytes(b) => b.len() / 4,
        }
    }

    /// True when there is no id.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids in order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        let (w, b): (&'a [u32], &'a [u8]) = match *self {
            Ids::Words(w) => (w, &[]),
            Ids::Bytes(b) => (&[], b),
        };
        w.iter().copied().chain(
            b.chunks_exact(4)
                .map(|c| <[u8; 4]>::try_from(c).map_or(0, u32::from_le_bytes)),
        )
    }
}

/// A request from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Which model the device holds.
    Info,
    /// Run the ViT classifier on one int8 image.
    Classify {
        /// `[C][H][W]`, quantized with the blob's input parameters.
        image: &'a [i8],
    },
    /// Greedy decoding: up to `max_new` tokens after `prompt` (for an encoder–decoder, the
    /// prompt is the start token and `image` is encoded first). Generation ends after an
    /// emitted eos, which is kept (a Llama's too: a host that stops *before* a llama2.c eos
    /// drops it).
    Generate {
        /// New tokens at most.
        max_new: u16,
        /// Prompt ids.
        prompt: Ids<'a>,
        /// Encoder–decoder image, else empty.
        image: &'a [i8],
    },
    /// Logits of every position of `ids` fed one by one from an empty cache (one
    /// [`Response::Row`] each, then [`Response::Done`]).
    TeacherForce {
        /// The sequence.
        ids: Ids<'a>,
        /// Encoder–decoder image, else empty.
        image: &'a [i8],
    },
}

/// A response from the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// The model the device holds.
    Info(Info<'a>),
    /// Classifier logits and time.
    Logits {
        /// Inference time.
        time: u64,
        /// int8 logits.
        logits: &'a [i8],
    },
    /// Generated ids (prompt + new) and times.
    Ids {
        /// Encoder time (0 for a decoder-only LM).
        encode: u64,
        /// Decode time (all tokens).
        decode: u64,
        /// Tokens fed through the decoder.
        tokens: u32,
        /// Prompt + generated ids.
        ids: Ids<'a>,
    },
    /// One teacher-forced logits row.
    Row {
        /// Position.
        position: u16,
        /// int8 logits.
        logits: &'a [i8],
    },
    /// End of a teacher-forced pass.
    Done {
        /// Time of the whole pass.
        time: u64,
        /// Rows sent.
        rows: u32,
    },
    /// The request (or frame) failed.
    Error {
        /// What failed.
        code: ErrorCode,
        /// A value that tells more (see [`ErrorCode`]).
        detail: u32,
    },
}

/// What [`Response::Info`] carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info<'a> {
    /// 0 ViT classifier, 1 decoder LM, 2 encoder–decoder, 3 Llama (core-attn's blob kind
    /// order, from 0; 3 added within version 1: see the crate README's "Compatibility").
    pub kind: u8,
    /// Unit of every time: 0 instructions, 1 cycles, 2 µs, 255 other.
    pub unit: u8,
    /// Largest request payload the device accepts.
    pub max_payload: u16,
    /// Blob length in bytes.
    pub blob_len: u32,
    /// The blob's own checksum (FNV-1a 32 stored in its header).
    pub checksum: u32,
    /// Longest id sequence (prompt + new tokens) the device has room for.
    pub max_ids: u16,
    /// Model name.
    pub name: &'a str,
}

/// Unit code for [`Info::unit`] from a unit name.
pub fn unit_code(unit: &str) -> u8 {
    match unit {
        "instructions" => 0,
        "cycles" => 1,
        "us" => 2,
        _ => 255,
    }
}

/// Unit name of a [`Info::unit`] code.
pub fn unit_name(code: u8) -> &'static str {
    match code {
        0 => "instructions",
        1 => "cycles",
        2 => "us",
        _ => "units",
    }
}

/// Why a payload did not parse or did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MsgError {
    /// Unknown message type.
    UnknownType(u8),
    /// The payload is shorter or longer than its fields say.
    Malformed,
    /// The output buffer is too small.
    TooLarge,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MsgError> {
        let (a, b) = self.0.split_at_checked(n).ok_or(MsgError::Malformed)?;
        self.0 = b;
        Ok(a)
    }
    fn array<const K: usize>(&mut self) -> Result<[u8; K], MsgError> {
        <[u8; K]>::try_from(self.take(K)?).map_err(|_| MsgError::Malformed)
    }
    fn u8(&mut self) -> Result<u8, MsgError> {
        Ok(u8::from_le_bytes(self.array()?))
    }
    fn u16(&mut self) -> Result<u16, MsgError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, MsgError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, MsgError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn ids(&mut self, n: usize) -> Result<Ids<'a>, MsgError> {
        Ok(Ids::Bytes(
            self.take(n.checked_mul(4).ok_or(MsgError::Malformed)?)?,
        ))
    }
    fn rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.0)
    }
    fn end(&self) -> Result<(), MsgError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(MsgError::Malformed)
        }
    }
}

struct Writer<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), MsgError> {
        let end = self.at.checked_add(b.len()).ok_or(MsgError::TooLarge)?;
        self.out
            .get_mut(self.at..end)
            .ok_or(MsgError::TooLarge)?
            .copy_from_slice(b);
        self.at = end;
        Ok(())
    }
    fn ids(&mut self, ids: &Ids<'_>) -> Result<(), MsgError> {
        for i in ids.iter() {
            self.put(&i.to_le_bytes())?;
        }
        Ok(())
    }
    fn len16(&mut self, n: usize) -> Result<(), MsgError> {
        self.put(
            &u16::try_from(n)
                .map_err(|_| MsgError::TooLarge)?
                .to_le_bytes(),
        )
    }
}

fn as_i8(b: &[u8]) -> &[i8] {
    bytemuck::cast_slice(b)
}

fn as_u8(b: &[i8]) -> &[u8] {
    bytemuck::cast_slice(b)
}

impl<'a> Request<'a> {
    /// Message type byte.
    pub fn ty(&self) -> u8 {
        match self {
            Request::Info => ty::INFO,
            Request::Classify { .. } => ty::CLASSIFY,
            Request::Generate { .. } => ty::GENERATE,
            Request::TeacherForce { .. } => ty::TEACHER_FORCE,
        }
    }

    /// Parse a request payload of type `ty`.
    pub fn parse(ty: u8, payload: &'a [u8]) -> Result<Self, MsgError> {
        let mut r = Reader(payload);
        let req = match ty {
            ty::INFO => Request::Info,
            ty::CLASSIFY => Request::Classify {
                image: as_i8(r.rest()),
            },
            ty::GENERATE => {
                let max_new = r.u16()?;
                let n = r.u16()? as usize;
                let prompt = r.ids(n)?;
                Request::Generate {
                    max_new,
                    prompt,
                    image: as_i8(r.rest()),
                }
            }
            ty::TEACHER_FORCE => {
                let n = r.u16()? as usize;
                let ids = r.ids(n)?;
                Request::TeacherForce {
                    ids,
                    image: as_i8(r.rest()),
                }
            }
            t => return Err(MsgError::UnknownType(t)),
        };
        r.end()?;
        Ok(req)
    }

    /// Write the payload into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, MsgError> {
        let mut w = Writer { out, at: 0 };
        match self {
            Request::Info => {}
            Request::Classify { image } => w.put(as_u8(image))?,
            Request::Generate {
                max_new,
                prompt,
                image,
            } => {
                w.put(&max_new.to_le_bytes())?;
                w.len16(prompt.len())?;
                w.ids(prompt)?;
                w.put(as_u8(image))?;
            }
            Request::TeacherForce { ids, image } => {
                w.len16(ids.len())?;
                w.ids(ids)?;
                w.put(as_u8(image))?;
            }
        }
        Ok(w.at)
    }
}

impl<'a> Response<'a> {
    /// Message type byte.
    pub fn ty(&self) -> u8 {
        match self {
            Response::Info(_) => ty::INFO_REPLY,
            Response::Logits { .. } => ty::LOGITS,
            Response::Ids { .. } => ty::IDS,
            Response::Row { .. } => ty::ROW,
            Response::Done { .. } => ty::DONE,
            Response::Error { .. } => ty::ERROR,
        }
    }

    /// Parse a response payload of type `ty`.
    pub fn parse(ty: u8, payload: &'a [u8]) -> Result<Self, MsgError> {
        let mut r = Reader(payload);
        let resp = match ty {
            ty::INFO_REPLY => Response::Info(Info {
                kind: r.u8()?,
                unit: r.u8()?,
                max_payload: r.u16()?,
                blob_len: r.u32()?,
                checksum: r.u32()?,
                max_ids: r.u16()?,
                name: core::str::from_utf8(r.rest()).map_err(|_| MsgError::Malformed)?,
            }),
            ty::LOGITS => Response::Logits {
                time: r.u64()?,
                logits: as_i8(r.rest()),
            },
            ty::IDS => {
                let encode = r.u64()?;
                let decode = r.u64()?;
                let tokens = r.u32()?;
                let rest = r.rest();
                if rest.len() % 4 != 0 {
                    return Err(MsgError::Malformed);
                }
                Response::Ids {
                    encode,
                    decode,
                    tokens,
                    ids: Ids::Bytes(rest),
                }
            }
            ty::ROW => Response::Row {
                position: r.u16()?,
                logits: as_i8(r.rest()),
            },
            ty::DONE => Response::Done {
                time: r.u64()?,
                rows: r.u32()?,
            },
            ty::ERROR => Response::Error {
                code: ErrorCode::from_u8(r.u8()?),
                detail: r.u32()?,
            },
            t => return Err(MsgError::UnknownType(t)),
        };
        r.end()?;
        Ok(resp)
    }

    /// Write the payload into `out`; returns its length.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, MsgError> {
        let mut w = Writer { out, at: 0 };
        match self {
            Response::Info(i) => {
                w.put(&[i.kind, i.unit])?;
                w.put(&i.max_payload.to_le_bytes())?;
                w.put(&i.blob_len.to_le_bytes())?;
                w.put(&i.checksum.to_le_bytes())?;
                w.put(&i.max_ids.to_le_bytes())?;
                w.put(i.name.as_bytes())?;
            }
            Response::Logits { time, logits } => {
                w.put(&time.to_le_bytes())?;
                w.put(as_u8(logits))?;
            }
            Response::Ids {
                encode,
                decode,
                tokens,
                ids,
            } => {
                w.put(&encode.to_le_bytes())?;
                w.put(&decode.to_le_bytes())?;
                w.put(&tokens.to_le_bytes())?;
                w.ids(ids)?;
            }
            Response::Row { position, logits } => {
                w.put(&position.to_le_bytes())?;
                w.put(as_u8(logits))?;
            }
            Response::Done { time, rows } => {
                w.put(&time.to_le_bytes())?;
                w.put(&rows.to_le_bytes())?;
            }
            Response::Error { code, detail } => {
                w.put(&[*code as u8])?;
                w.put(&detail.to_le_bytes())?;
            }
        }
        Ok(w.at)
    }
}
