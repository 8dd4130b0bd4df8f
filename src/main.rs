//! The `strongroom` binary: parses the command line and runs it.
use clap::Parser;

fn main() -> std::process::ExitCode {
    strongroom::cli::run(strongroom::cli::Cli::parse())
}
