//! strongroom: an HSM-backed signing appliance for a public certificate authority.
pub mod keycheck;
pub mod lint;
pub mod verify;
