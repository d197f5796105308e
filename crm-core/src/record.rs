//! The `record!` macro: how crm-core declares a record whose fields only crm-core writes.

/// Declares a record: a struct whose fields are `pub(crate)` (only crm-core's pure transitions set them) and a getter
/// per field carrying the field's documentation.
///
/// A field reads `name: Type` when its getter returns a copy of the value, else `name: Type => Returned = how`,
/// where `how` is `borrow` (returns `&self.name`, so `&str` for a `String` and `&[T]` for a `Vec<T>`), `deref`
/// (`Option<String>` as `Option<&str>`) or `as_ref` (`Option<T>` as `Option<&T>`). A field may carry
/// `#[serde(..)]` attributes after its documentation.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[doc = $doc:expr])*
                $(#[serde($($serde:tt)*)])*
                $field:ident : $ty:ty $(=> $ret:ty = $how:ident)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[doc = $doc])* $(#[serde($($serde)*)])* pub(crate) $field: $ty, )*
        }

        impl $name {
            $(
                $(#[doc = $doc])*
                pub fn $field(&self) -> record!(@ret $ty $(, $ret)?) {
                    record!(@get $($how)? self.$field)
                }
            )*
        }
    };
    (@ret $ty:ty) => { $ty };
    (@ret $ty:ty, $ret:ty) => { $ret };
    (@get borrow $e:expr) => { &$e };
    (@get deref $e:expr) => { $e.as_deref() };
    (@get as_ref $e:expr) => { $e.as_ref() };
    (@get $e:expr) => { $e };
}
