//! The `typed_reads!` macro: how crm-core declares an extension trait of typed reads over one storage read that
//! answers a key with a list of records (`Store::fetch`, `CommerceStore::fetch_commerce`).

use crate::error::{Error, Result};
use std::fmt::Display;

/// A record type the typed reads pick out of the records `R` a storage read returns.
pub(crate) trait Pick<R>: Sized {
    /// The record when `r` is one of this type.
    fn pick(r: R) -> Option<Self>;
}

/// What a typed read makes of the records it was answered with: the first of the type (`Option<T>`) or all of
/// them (`Vec<T>`).
pub(crate) trait FromRecords<R>: Sized {
    /// Picks the records of the type out of `records`.
    fn from_records(records: Vec<R>) -> Self;
}

impl<R, T: Pick<R>> FromRecords<R> for Option<T> {
    fn from_records(records: Vec<R>) -> Self {
        records.into_iter().find_map(T::pick)
    }
}

impl<R, T: Pick<R>> FromRecords<R> for Vec<T> {
    fn from_records(records: Vec<R>) -> Self {
        records.into_iter().filter_map(T::pick).collect()
    }
}

/// The record a by-id read found; [`Error::NotFound`] naming `entity` and `id` when there is none.
pub(crate) fn found<R, T: Pick<R>>(
    records: Vec<R>,
    entity: &'static str,
    id: impl Display,
) -> Result<T> {
    Option::from_records(records).ok_or_else(|| Error::not_found(entity, id))
}

/// Implements [`Pick`] for each `Variant => Type` of the record enum `$record`.
macro_rules! pick {
    ($record:ident { $($variant:ident => $ty:ty),* $(,)? }) => {
        $(impl $crate::typed_reads::Pick<$record> for $ty {
            fn pick(r: $record) -> Option<Self> {
                match r {
                    $record::$variant(x) => Some(x),
                    _ => None,
                }
            }
        })*
    };
}

/// Declares an extension trait over `$base` whose every method reads `$fetch(tenant, &key)` and picks its answer:
/// `-> T = key, "entity" for id` is a by-id read ([`Error::NotFound`] when missing), `-> Option<T> = key` the first
/// record of the type, `-> Vec<T> = key` all of them. The trait is implemented for every `$base`.
macro_rules! typed_reads {
    (
        $(#[$meta:meta])*
        pub trait $name:ident: $base:ident via $fetch:ident {
            $(
                $(#[doc = $doc:expr])*
                fn $method:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $key:expr $(, $entity:literal for $id:ident)?;
            )*
        }
    ) => {
        $(#[$meta])*
        #[async_trait::async_trait]
        pub trait $name: $base {
            $(
                $(#[doc = $doc])*
                async fn $method(&self, tenant: TenantId, $($arg: $ty),*) -> Result<$ret> {
                    let records = self.$fetch(tenant, &$key).await?;
                    typed_reads!(@answer records $(, $entity, $id)?)
                }
            )*
        }

        impl<S: $base + ?Sized> $name for S {}
    };
    (@answer $records:ident) => {
        Ok($crate::typed_reads::FromRecords::from_records($records))
    };
    (@answer $records:ident, $entity:literal, $id:ident) => {
        $crate::typed_reads::found($records, $entity, $id)
    };
}
