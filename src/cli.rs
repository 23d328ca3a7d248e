//! cli (in progress)

/// Runs the command line.
pub fn main() -> anyhow::Result<()> {
    Ok(())
}
