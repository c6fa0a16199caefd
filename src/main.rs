//! The `ivault` binary: parse the command line, run, exit with the code `cli::run` returns.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
