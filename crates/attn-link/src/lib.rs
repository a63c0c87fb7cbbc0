//! A serial link to a tiny-attn board: send it an input, get the model's answer and the time.
//!
//! - [`frame`]: sync bytes, version, type, sequence number, length, payload, CRC-32; a bounded
//!   streaming [`frame::Decoder`] that skips garbage and resynchronises after a bad frame.
//! - [`msg`]: the requests (model info, classify one image, generate N tokens, teacher-forced
//!   logits) and responses (info with the blob's checksum, logits, ids, rows, error frames).
//! - [`server`]: [`server::Server`] serves requests over any `embedded_io::{Read, Write}` port
//!   (a QEMU CMSDK UART, an STM32 USART, an RP2040 UART, an in-memory pipe) with a
//!   [`server::Handler`]; a bad frame is answered with an error frame and serving goes on.
//! - `model` (feature `model`): the handler that runs a core-attn model blob.
//! - `client` (feature `std`): the host side, with timeouts.
//!
//! `#![no_std]`, no allocation, no panic path on any input.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
pub mod client;
pub mod frame;
#[cfg(feature = "model")]
pub mod model;
pub mod msg;
pub mod server;

pub use frame::{Decoder, MAX_FRAME};
pub use msg::{ErrorCode, Ids, Info, Request, Response};
pub use server::{Fault, Handler, Reply, Server};
