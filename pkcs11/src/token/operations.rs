//! Operations: sign and verify (one sign order per signature, verification local) and digests
//! (computed locally).

use super::*;

impl KeyOpKind {
    /// The word in the function names: `C_Sign`, `C_SignUpdate`, `C_SignFinal`.
    fn call_name(self) -> &'static str {
        match self {
            KeyOpKind::Sign => "Sign",
            KeyOpKind::Verify => "Verify",
        }
    }
}

impl Token {
    pub(super) fn key_op(
        &self,
        object: CK_OBJECT_HANDLE,
        mechanism: SignMechanism,
        class: CK_OBJECT_CLASS,
    ) -> Result<KeyOp> {
        let objects = self.objects()?;
        let obj = objects.get(object).ok_or(CKR_KEY_HANDLE_INVALID)?;
        if obj.class() == CKO_CERTIFICATE {
            return Err(CKR_KEY_HANDLE_INVALID);
        }
        if obj.class() != class {
            return Err(CKR_KEY_FUNCTION_NOT_PERMITTED);
        }
        mechanism.check_key(&obj.key().public_key)?;
        Ok(KeyOp::new(Arc::clone(obj.key()), mechanism))
    }

    /// `C_SignInit` (`None` cancels an active signature, as PKCS#11 3.0 allows).
    pub fn sign_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Option<SignMechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.key_op_init(KeyOpKind::Sign, handle, mechanism, key)
    }

    /// `C_SignInit`/`C_VerifyInit`: `None` cancels the active operation.
    pub(super) fn key_op_init(
        &self,
        kind: KeyOpKind,
        handle: CK_SESSION_HANDLE,
        mechanism: Option<SignMechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        let session = self.session(handle)?;
        let Some(mechanism) = mechanism else {
            *lock(&session).op_slot(kind) = None;
            return Ok(());
        };
        // Checked before resolving the key (which may fetch the key list) and
        // again under the lock, since another thread may have started one since.
        if lock(&session).op_slot(kind).is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let op = self.key_op(key, mechanism, kind.key_class())?;
        let mut s = lock(&session);
        let slot = s.op_slot(kind);
        if slot.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        *slot = Some(op);
        Ok(())
    }

    /// `C_SignUpdate`/`C_VerifyUpdate`: a failed update ends the operation (PKCS#11), the
    /// refusal of a single-part mechanism included.
    pub(super) fn key_op_update(
        &self,
        kind: KeyOpKind,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
    ) -> Result<()> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let slot = s.op_slot(kind);
        let op = slot.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let result = op.update(data);
        if result.is_err() {
            *slot = None;
        }
        result
    }

    /// The checks `C_Sign`/`C_SignFinal` and `C_Verify`/`C_VerifyFinal` share: an operation
    /// of `kind` is active in the session, and its shape fits the call (a single-part call
    /// cannot finish what updates started; a final call cannot finish a single-part-only
    /// mechanism). A mismatch ends the operation, as any failure of a finishing call but a size
    /// answer does (PKCS#11). `then` gets the (occupied) slot under the session lock, to answer
    /// a size or take the operation out.
    fn finish_key_op<T>(
        &self,
        kind: KeyOpKind,
        handle: CK_SESSION_HANDLE,
        single_part: bool,
        then: impl FnOnce(&mut Option<KeyOp>) -> Result<T>,
    ) -> Result<T> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let slot = s.op_slot(kind);
        let op = slot.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        if single_part && op.multi_part {
            // PKCS#11 lists no OPERATION_ACTIVE for this case.
            let n = kind.call_name();
            log::warn!(
                "libpkcs11ks: C_{n} after C_{n}Update: finish with C_{n}Final (the operation has ended)"
            );
            *slot = None;
            return Err(CKR_FUNCTION_FAILED);
        }
        if !single_part && op.hasher.is_none() {
            let rv = op.single_part_only();
            *slot = None;
            return Err(rv);
        }
        then(slot)
    }

    /// Takes the active signature out of the session unless the caller only asks
    /// for the size (`capacity` absent or too small), which leaves it active.
    pub(super) fn take_sign(
        &self,
        handle: CK_SESSION_HANDLE,
        capacity: Option<usize>,
        single_part: bool,
    ) -> Result<SignTurn> {
        self.finish_key_op(KeyOpKind::Sign, handle, single_part, |slot| {
            match slot.as_ref().map(KeyOp::signature_len) {
                Some(len) if capacity.is_none_or(|c| c < len) => Ok(SignTurn::SizeOnly(len)),
                _ => slot
                    .take()
                    .map(|op| SignTurn::Sign(Box::new(op)))
                    .ok_or(CKR_OPERATION_NOT_INITIALIZED),
            }
        })
    }

    pub(super) fn remote_sign(&self, key: &KeyEntry, request: &SignRequest) -> Result<Vec<u8>> {
        let backend = self.backend()?;
        backend
            .sign(&key.keyid, request)
            .map_err(|e| from_common(&format!("signing with {}", key.keyid), &e))
    }

    /// `C_Sign`: one sign order unless only the size is asked for.
    pub fn sign(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        let op = match self.take_sign(handle, capacity, true)? {
            SignTurn::Sign(op) => *op,
            SignTurn::SizeOnly(len) => return Ok(Output::Size(len)),
        };
        let request = op.single(data)?;
        self.remote_sign(&op.key, &request).map(Output::Done)
    }

    /// `C_SignUpdate`.
    pub fn sign_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.key_op_update(KeyOpKind::Sign, handle, data)
    }

    /// `C_SignFinal`.
    pub fn sign_final(&self, handle: CK_SESSION_HANDLE, capacity: Option<usize>) -> Result<Output> {
        let op = match self.take_sign(handle, capacity, false)? {
            SignTurn::Sign(op) => *op,
            SignTurn::SizeOnly(len) => return Ok(Output::Size(len)),
        };
        let key = Arc::clone(&op.key);
        let request = op.finish()?;
        self.remote_sign(&key, &request).map(Output::Done)
    }

    /// `C_VerifyInit` (`None` cancels).
    pub fn verify_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: Option<SignMechanism>,
        key: CK_OBJECT_HANDLE,
    ) -> Result<()> {
        self.key_op_init(KeyOpKind::Verify, handle, mechanism, key)
    }

    /// Takes the active verification out of the session (there is no size query).
    pub(super) fn take_verify(
        &self,
        handle: CK_SESSION_HANDLE,
        single_part: bool,
    ) -> Result<KeyOp> {
        self.finish_key_op(KeyOpKind::Verify, handle, single_part, |slot| {
            slot.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)
        })
    }

    pub(super) fn check_signature(
        key: &KeyEntry,
        len: usize,
        request: &SignRequest,
        signature: &[u8],
    ) -> Result<()> {
        if signature.len() != len {
            return Err(CKR_SIGNATURE_LEN_RANGE);
        }
        ks_common::verify::verify(&key.public_key, request, signature).map_err(|e| {
            log::info!(
                "libpkcs11ks: signature does not verify with {}: {e}",
                key.keyid
            );
            CKR_SIGNATURE_INVALID
        })
    }

    /// `C_Verify` (local, with the public key).
    pub fn verify(&self, handle: CK_SESSION_HANDLE, data: &[u8], signature: &[u8]) -> Result<()> {
        let op = self.take_verify(handle, true)?;
        let request = op.single(data)?;
        Self::check_signature(&op.key, op.signature_len(), &request, signature)
    }

    /// `C_VerifyUpdate`.
    pub fn verify_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        self.key_op_update(KeyOpKind::Verify, handle, data)
    }

    /// `C_VerifyFinal`.
    pub fn verify_final(&self, handle: CK_SESSION_HANDLE, signature: &[u8]) -> Result<()> {
        let op = self.take_verify(handle, false)?;
        let key = Arc::clone(&op.key);
        let len = op.signature_len();
        let request = op.finish()?;
        Self::check_signature(&key, len, &request, signature)
    }

    // ---- digests ----------------------------------------------------------

    /// `C_DigestInit`.
    pub fn digest_init(
        &self,
        handle: CK_SESSION_HANDLE,
        mechanism: CK_MECHANISM_TYPE,
        param: &[u8],
    ) -> Result<()> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        if s.digest.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let alg = digest_hash(mechanism).ok_or(CKR_MECHANISM_INVALID)?;
        if !param.is_empty() {
            return Err(CKR_MECHANISM_PARAM_INVALID);
        }
        s.digest = Some(DigestOp {
            alg,
            hasher: Hasher::new(alg),
        });
        Ok(())
    }

    /// `C_Digest`.
    pub fn digest(
        &self,
        handle: CK_SESSION_HANDLE,
        data: &[u8],
        capacity: Option<usize>,
    ) -> Result<Output> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let len = op.alg.output_len();
        if capacity.is_none_or(|c| c < len) {
            return Ok(Output::Size(len));
        }
        let alg = op.alg;
        s.digest = None;
        Ok(Output::Done(digest(alg, data)))
    }

    /// Ends an active digest (a failed `C_DigestUpdate`); nothing to do without one.
    pub fn digest_cancel(&self, handle: CK_SESSION_HANDLE) {
        if let Ok(session) = self.session(handle) {
            lock(&session).digest = None;
        }
    }

    /// `C_DigestUpdate`.
    pub fn digest_update(&self, handle: CK_SESSION_HANDLE, data: &[u8]) -> Result<()> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.digest.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        op.hasher.update(data);
        Ok(())
    }

    /// `C_DigestFinal`.
    pub fn digest_final(
        &self,
        handle: CK_SESSION_HANDLE,
        capacity: Option<usize>,
    ) -> Result<Output> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let op = s.digest.as_ref().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let len = op.alg.output_len();
        if capacity.is_none_or(|c| c < len) {
            return Ok(Output::Size(len));
        }
        let op = s.digest.take().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        Ok(Output::Done(op.hasher.finalize()))
    }
}
