use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: switchyard::Allocator = switchyard::Allocator;

#[tokio::main]
async fn main() -> ExitCode {
    switchyard::cli::run(switchyard::cli::Cli::parse()).await
}
