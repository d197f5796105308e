//! The `checked_form!` macro: how crm-core deserialises a value only through the constructor that checks it.

/// Declares `$raw`, the serde form of `$ty` with the fields listed, and makes `$ty` deserialise through it by
/// calling `$check` with the fields in order (the type carries `#[serde(try_from = "$raw")]`), so that JSON cannot
/// bypass the checks of the constructor.
macro_rules! checked_form {
    (
        $(#[doc = $doc:expr])*
        $raw:ident for $ty:ident { $($field:ident: $fty:ty),+ $(,)? } via $check:path
    ) => {
        $(#[doc = $doc])*
        #[derive(serde::Deserialize)]
        struct $raw {
            $($field: $fty),+
        }

        impl TryFrom<$raw> for $ty {
            type Error = $crate::error::Error;
            fn try_from(r: $raw) -> $crate::error::Result<Self> {
                $check($(r.$field),+)
            }
        }
    };
}
