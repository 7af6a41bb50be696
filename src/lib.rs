#![forbid(unsafe_code)]
#![deny(missing_docs)]
//! socketserver
pub mod frame;
