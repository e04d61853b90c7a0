//! Helpers shared by the end-to-end suites.

pub mod fanout_support;
pub mod github_oidc_support;
pub mod pkcs11_support;
pub mod provider_support;
pub mod tutorial_support;
pub mod web_support;
