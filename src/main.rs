//! The `stepstone` command line.

fn main() -> anyhow::Result<()> {
    stepstone::cli::main()
}
