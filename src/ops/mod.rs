//! The use cases: each puts the layers below together (the store, archives, the engine, a
//! registry) for one thing a user asks for; the command line only parses and renders.

pub mod pull;
pub mod push;
