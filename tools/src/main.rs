//! `tools`: the host CLI. All logic lives in the library (`tools::cli`); this only parses the
//! command line, runs it, and turns an error into one `error: ...` line and a non-zero exit.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tools::cli::Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match tools::cli::run(&cli, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
