//! Type-checked dispatch tables: each entry's function is checked against the
//! header's `OSSL_FUNC_*_fn` type before it is stored as OpenSSL's generic
//! function pointer.

use crate::ffi::{OSSL_ALGORITHM, OSSL_DISPATCH};

/// One `OSSL_DISPATCH` entry: `entry!(OSSL_FUNC_X, OSSL_FUNC_x_fn, rust_fn)`.
#[macro_export]
macro_rules! entry {
    ($id:expr, $ty:ty, $f:expr) => {{
        const F: $ty = Some($f);
        $crate::ffi::OSSL_DISPATCH {
            function_id: $id as ::std::ffi::c_int,
            // SAFETY: OpenSSL stores every function as `void (*)(void)` and
            // casts it back to the type named by the id; `$ty` is that type
            // (from the headers), so the round trip is sound.
            function: unsafe { ::std::mem::transmute::<$ty, Option<unsafe extern "C" fn()>>(F) },
        }
    }};
}

/// The terminator of a dispatch table.
pub const DISPATCH_END: OSSL_DISPATCH = OSSL_DISPATCH {
    function_id: 0,
    function: None,
};

/// A static table of algorithms offered for one operation.
#[repr(transparent)]
pub struct Algorithms<const N: usize>(pub [OSSL_ALGORITHM; N]);

// SAFETY: only pointers to static, immutable strings and dispatch tables.
unsafe impl<const N: usize> Sync for Algorithms<N> {}

/// One algorithm entry; names and properties are NUL-terminated constants.
pub const fn algorithm(
    names: &'static [u8],
    props: &'static [u8],
    implementation: &'static [OSSL_DISPATCH],
    description: &'static [u8],
) -> OSSL_ALGORITHM {
    OSSL_ALGORITHM {
        algorithm_names: names.as_ptr() as *const std::ffi::c_char,
        property_definition: props.as_ptr() as *const std::ffi::c_char,
        implementation: implementation.as_ptr(),
        algorithm_description: description.as_ptr() as *const std::ffi::c_char,
    }
}

/// The terminator of an algorithm table.
pub const ALGORITHM_END: OSSL_ALGORITHM = OSSL_ALGORITHM {
    algorithm_names: std::ptr::null(),
    property_definition: std::ptr::null(),
    implementation: std::ptr::null(),
    algorithm_description: std::ptr::null(),
};
