//! Helpers shared by integration tests (`mod common;` in a test crate).
#![allow(dead_code)]

pub mod db;
