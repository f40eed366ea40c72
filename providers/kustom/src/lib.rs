//! The Kustom provider: iframe checkout, confirmation and push with acknowledgement, validation callback, order sync, capture, and a strict fake Kustom.
