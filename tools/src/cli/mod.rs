//! The `tools` command line: one module per subcommand, dispatched from [`run`].
//!
//! To add a subcommand (`convert`, `inspect`, `eval`, ...): add a module here with an
//! `Args` struct (clap derive) and a `run(&Args, &mut dyn Write) -> Result<()>`, then a variant
//! to [`Command`] and an arm to [`run`].

pub mod attention_map;
pub mod convert;
pub mod device;
pub mod eval;
pub mod inspect;
pub mod simulate;

use std::io::Write;

use clap::{Parser, Subcommand};

use crate::error::Result;

/// Host CLI for core-attn: import checkpoints, quantize and pack, inspect, simulate, eval.
#[derive(Debug, Parser)]
#[command(name = "tools", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a model on an input and print its outputs (float path: a checkpoint directory).
    Simulate(simulate::SimulateArgs),
    /// Calibrate, quantize and pack a checkpoint into an int8 model blob.
    Convert(convert::ConvertArgs),
    /// Describe a model blob: architecture, parameters, MACs, flash and RAM.
    Inspect(inspect::InspectArgs),
    /// Evaluate an int8 model and its f32 reference side by side (accuracy or loss,
    /// agreement, per-layer SQNR).
    Eval(eval::EvalArgs),
    /// Talk to a board serving a model over a serial link (or a QEMU board it starts): model
    /// info, run inputs on the device, on-target validation.
    Device(device::DeviceArgs),
}

/// Runs a parsed command line, writing results to `out`.
pub fn run(cli: &Cli, out: &mut dyn Write) -> Result<()> {
    match &cli.command {
        Command::Simulate(args) => simulate::run(args, out),
        Command::Convert(args) => convert::run(args, out),
        Command::Inspect(args) => inspect::run(args, out),
        Command::Eval(args) => eval::run(args, out),
        Command::Device(args) => device::run(args, out),
    }
}
