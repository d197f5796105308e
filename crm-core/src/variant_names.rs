//! The `variant_names!` macro: how crm-core gives each variant of an enum the stable name it is known by outside
//! Rust (in scripts, scenario files, error codes).

/// Implements a method returning one `&'static str` per variant of an enum, whatever fields the variant has:
/// `pub fn name for Type { Variant => "variant", … }`.
macro_rules! variant_names {
    (
        $(#[doc = $doc:expr])*
        $vis:vis fn $method:ident for $ty:ident {
            $($variant:ident => $name:literal),+ $(,)?
        }
    ) => {
        impl $ty {
            $(#[doc = $doc])*
            $vis fn $method(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $name,)+
                }
            }
        }
    };
}
