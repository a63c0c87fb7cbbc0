//! The int8 path of Llama models (issue 14, stage 2).

use std::io::Write;

use core_attn::blob::Blob;

use crate::cli::simulate::SimulateArgs;
use crate::error::{Error, Result};

/// `tools simulate` on a Llama blob.
pub fn simulate(_args: &SimulateArgs, _blob: &Blob<'_>, _out: &mut dyn Write) -> Result<()> {
    Err(Error::Input("not yet".into()))
}
