//! Entry points for the fuzz targets (`fuzz/`): the `C_*` functions need an initialised
//! library, and the fuzzer must not reach a KeyServer. Not part of the API.

use cryptoki_sys::{CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_OK, CK_RV};

use crate::fns::STATE;
use crate::token::{SignerFactory, Token};

/// `C_Initialize` with `factory` instead of the KeyServer client (e.g. `ks_common`'s
/// `FakeSigner`), so that every `C_*` function can be driven without a network.
#[doc(hidden)]
pub fn initialize_with(factory: SignerFactory) -> CK_RV {
    let mut state = STATE.write().unwrap_or_else(|e| e.into_inner());
    if state.is_some() {
        return CKR_CRYPTOKI_ALREADY_INITIALIZED;
    }
    *state = Some(std::sync::Arc::new(Token::new(factory)));
    CKR_OK
}
