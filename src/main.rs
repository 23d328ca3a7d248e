//! The `stepstone` command line.

fn main() -> std::process::ExitCode {
    stepstone::cli::main()
}
