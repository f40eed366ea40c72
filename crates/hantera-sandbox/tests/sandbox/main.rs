//! The sandbox driven over a real socket with reqwest, as the gateway's Hantera client
//! drives it.

mod actors;
mod auth;
mod commerce;
mod common;
mod faults;
mod graph;
mod inspect;
