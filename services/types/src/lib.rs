//! Identifiers, money, dates and log time shared by every medmesh crate.
//!
//! This crate is pure: it must never depend on tokio, tonic, prost, rocksdb or openraft.
//! Money is a [`Money`] (a `rust_decimal::Decimal` held at exactly two decimals, the fen);
//! rounding to the fen is defined once, in [`Money::round_fen`].
#![forbid(unsafe_code)]

mod date;
mod ids;
mod money;

pub use date::{Date, DateError, LogTime};
pub use ids::{
    mask_identity, EnterpriseCode, IdError, InstitutionId, ItemCode, KeyedHash, PersonId, PersonnelCode, ProvinceCode,
    Sealed, Serial,
};
pub use money::{Money, MoneyError, Ratio, MAX_YUAN};
