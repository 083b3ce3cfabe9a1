//! Integration tests of the model crate, one module per concept.

mod support;

mod mta;
mod programs;
mod runner;
mod switchboard;
