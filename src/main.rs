//! The `stepstone` command line.

/// mimalloc: the dataflows allocate many small strings and vectors, where glibc's allocator
/// spends much of its time consolidating free lists.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stepstone::cli::main()
}
