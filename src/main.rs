//! `healthcard`: the service and its administrative commands.

fn main() -> std::process::ExitCode {
    healthcard::cli::main()
}
