//! The `storage_trait!` macro: how crm-core declares a storage trait ([`Store`](crate::store::Store),
//! [`CommerceStore`](crate::commerce::CommerceStore), [`OutboxStore`](crate::outbox::OutboxStore)) once, with the
//! impl for `Arc<S>` that forwards every method generated from the same list.

/// Declares `pub trait $name: Send + Sync + Debug` (async, through `async_trait`) whose every entry
/// `fn m(arg: T, …) -> Result<R>;` is a required method `async fn m(&self, arg: T, …) -> Result<R>`, and
/// `impl<S: $name + ?Sized> $name for Arc<S>` forwarding each of them to `**self`, so an `Arc<dyn $name>` (or any
/// `Arc<S>`) is itself one. The forwarding impl is generated from the same list as the trait and carries
/// `#[deny(clippy::missing_trait_methods)]`, so clippy proves it complete (`crm-core/tests/trait_surface.rs`
/// counts the entries).
macro_rules! storage_trait {
    (
        $(#[$meta:meta])*
        pub trait $name:ident: Send + Sync + Debug {
            $(
                $(#[doc = $doc:expr])*
                fn $method:ident($($arg:ident: $ty:ty),* $(,)?) -> Result<$ret:ty>;
            )*
        }
    ) => {
        $(#[$meta])*
        #[async_trait::async_trait]
        pub trait $name: Send + Sync + std::fmt::Debug {
            $(
                $(#[doc = $doc])*
                async fn $method(&self, $($arg: $ty),*) -> $crate::error::Result<$ret>;
            )*
        }

        #[doc = concat!(
            "Forwards every method, so an `Arc<dyn ", stringify!($name), ">` (or any `Arc<S>`) is itself one."
        )]
        #[async_trait::async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<S: $name + ?Sized> $name for std::sync::Arc<S> {
            $(
                async fn $method(&self, $($arg: $ty),*) -> $crate::error::Result<$ret> {
                    (**self).$method($($arg),*).await
                }
            )*
        }
    };
}
