//! Stepstone's dataflows: the pure differential-dataflow graphs that turn interaction events into
//! per-journey context, the contact-point transition graph and segment aggregates.
//!
//! Nothing here does IO. The `stepstone` crate reads sources, feeds [`event::Event`]s into
//! [`views::build`], and writes what comes out. Each view can be built and tested alone.

mod bag;
pub mod event;
pub mod identity;
mod journey_book;
mod journey_state;
pub mod journeys;
#[cfg(feature = "oracle")]
pub mod oracle;
pub mod row;
pub mod rules;
pub mod segments;
mod steps;
pub mod symbols;
pub mod transitions;
pub mod views;
