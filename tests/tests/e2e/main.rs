//! The end-to-end tests of the real `psp-gateway` binary, one test binary (linking one per
//! file costs minutes on two cores): each module is what used to be a file of its own.

mod bad_input;
mod cli;
mod config_safety;
mod faults;
mod hostile_callers;
mod jobs;
mod kustom;
mod payment;
mod postgres;
mod sandbox_cli;
mod sandbox_embedded;
mod slow_clients;
mod stripe;
mod stripe_capture;
mod underpaid;
