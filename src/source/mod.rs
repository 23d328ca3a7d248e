//! Sources (in progress)
