//! The sandbox driven over a real socket with reqwest, as the gateway's Hantera client
//! drives it.

mod actors;
mod auth;
mod cart_api;
mod commerce;
mod common;
mod events;
mod faults;
mod graph;
mod hooks;
mod inspect;
mod orders;
