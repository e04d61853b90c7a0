//! Finding objects (`C_FindObjects*`) and the object store of a session.

use super::*;

impl Token {
    /// `C_FindObjectsInit`.
    pub fn find_init(
        &self,
        handle: CK_SESSION_HANDLE,
        template: &[(CK_ATTRIBUTE_TYPE, Vec<u8>)],
    ) -> Result<()> {
        let session = self.session(handle)?;
        if lock(&session).find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        let handles = self.objects()?.find(template);
        let mut s = lock(&session);
        if s.find.is_some() {
            return Err(CKR_OPERATION_ACTIVE);
        }
        s.find = Some(FindOp {
            handles,
            position: 0,
        });
        Ok(())
    }

    /// `C_FindObjects`: up to `max` further handles.
    pub fn find_next(
        &self,
        handle: CK_SESSION_HANDLE,
        max: usize,
    ) -> Result<Vec<CK_OBJECT_HANDLE>> {
        let session = self.session(handle)?;
        let mut s = lock(&session);
        let find = s.find.as_mut().ok_or(CKR_OPERATION_NOT_INITIALIZED)?;
        let end = find.handles.len().min(find.position.saturating_add(max));
        let out = find.handles[find.position..end].to_vec();
        find.position = end;
        Ok(out)
    }

    /// `C_FindObjectsFinal`.
    pub fn find_final(&self, handle: CK_SESSION_HANDLE) -> Result<()> {
        let session = self.session(handle)?;
        let find = lock(&session).find.take();
        find.map(|_| ()).ok_or(CKR_OPERATION_NOT_INITIALIZED)
    }

    /// Checks the session, then returns the object store (for attribute reads).
    pub fn objects_for(&self, handle: CK_SESSION_HANDLE) -> Result<Arc<ObjectStore>> {
        self.session(handle)?;
        self.objects()
    }

    // ---- signing and verification -----------------------------------------
}
