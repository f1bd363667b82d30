//! The token as the signing engine sees it: a [`SignerPool`] is the
//! [`Signer`] and the [`Sessions`] of [`crate::sign`], so the pipeline
//! signs with the token's sessions without knowing PKCS#11, and tests give
//! it a fake instead.

use super::SignerPool;
use crate::sign::engine::{Signer, SignerError};
use crate::sign::pipeline::Sessions;
use crate::sign::TokenInput;

impl Signer for SignerPool<'_> {
    fn workers(&self) -> usize {
        SignerPool::workers(self)
    }

    /// The token error, if any, travels as the error's source so that its
    /// exit code and message reach the operator unchanged.
    fn sign(&self, worker: usize, key: usize, input: &TokenInput) -> Result<Vec<u8>, SignerError> {
        let data = match input {
            TokenInput::RsaPkcs(v) | TokenInput::Ecdsa(v) | TokenInput::EdDsa(v) => v,
        };
        Ok(SignerPool::sign(self, worker, key, data)?)
    }
}

impl Sessions for SignerPool<'_> {
    fn keep(&mut self, n: usize) {
        SignerPool::keep(self, n);
    }
}
