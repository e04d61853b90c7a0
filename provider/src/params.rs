//! Typed access to `OSSL_PARAM` arrays, in Rust so the provider never needs
//! libcrypto's own helpers (and so works in any OpenSSL 3.x/4.x process).
//!
//! Integers follow OpenSSL's rules: `OSSL_PARAM_INTEGER`/`UNSIGNED_INTEGER`
//! of any width up to 8 bytes; big numbers are unsigned native-endian byte
//! strings of the caller's `data_size`.

use std::ffi::{c_char, c_void, CStr};
use std::ptr;

use crate::ffi::{
    OSSL_PARAM, OSSL_PARAM_INTEGER, OSSL_PARAM_OCTET_PTR, OSSL_PARAM_OCTET_STRING,
    OSSL_PARAM_UNSIGNED_INTEGER, OSSL_PARAM_UTF8_PTR, OSSL_PARAM_UTF8_STRING,
};

/// A view of one `OSSL_PARAM` owned by the caller.
pub struct Param {
    p: *mut OSSL_PARAM,
}

impl Param {
    /// The parameter's name.
    pub fn key(&self) -> &str {
        // SAFETY: `p` points into a live, terminated OSSL_PARAM array (see
        // `ParamIter`) and its key is a NUL-terminated string by contract.
        unsafe {
            let key = (*self.p).key;
            if key.is_null() {
                return "";
            }
            CStr::from_ptr(key).to_str().unwrap_or("")
        }
    }

    fn raw(&self) -> &OSSL_PARAM {
        // SAFETY: see `key`.
        unsafe { &*self.p }
    }

    /// The parameter's OpenSSL data type.
    pub fn data_type(&self) -> u32 {
        self.raw().data_type
    }

    /// Reads an integer of any width (signed or unsigned), or a decimal
    /// number given as a UTF-8 string.
    pub fn get_i64(&self) -> Option<i64> {
        let p = self.raw();
        if p.data.is_null() {
            return None;
        }
        match p.data_type {
            OSSL_PARAM_INTEGER | OSSL_PARAM_UNSIGNED_INTEGER if p.data_size <= 8 => {
                let mut buf = [0u8; 8];
                // SAFETY: data is non-null and holds data_size (<= 8) bytes.
                let src = unsafe { std::slice::from_raw_parts(p.data as *const u8, p.data_size) };
                let signed = p.data_type == OSSL_PARAM_INTEGER;
                if cfg!(target_endian = "little") {
                    buf[..src.len()].copy_from_slice(src);
                    let neg = signed && src.last().is_some_and(|b| b & 0x80 != 0);
                    if neg {
                        buf[src.len()..].fill(0xff);
                    }
                    Some(i64::from_le_bytes(buf))
                } else {
                    buf[8 - src.len()..].copy_from_slice(src);
                    let neg = signed && src.first().is_some_and(|b| b & 0x80 != 0);
                    if neg {
                        buf[..8 - src.len()].fill(0xff);
                    }
                    Some(i64::from_be_bytes(buf))
                }
            }
            OSSL_PARAM_UTF8_STRING | OSSL_PARAM_UTF8_PTR => self.get_str()?.trim().parse().ok(),
            _ => None,
        }
    }

    /// Reads a UTF-8 string (`UTF8_STRING` or `UTF8_PTR`).
    pub fn get_str(&self) -> Option<String> {
        let p = self.raw();
        if p.data.is_null() {
            return None;
        }
        let bytes: &[u8] = match p.data_type {
            // SAFETY: a UTF8_STRING holds data_size bytes at data.
            OSSL_PARAM_UTF8_STRING => unsafe {
                std::slice::from_raw_parts(p.data as *const u8, p.data_size)
            },
            OSSL_PARAM_UTF8_PTR => {
                // SAFETY: a UTF8_PTR's data points at a `const char *`.
                let s = unsafe { *(p.data as *const *const c_char) };
                if s.is_null() {
                    return None;
                }
                // SAFETY: the pointed-to string is NUL-terminated by contract.
                unsafe { CStr::from_ptr(s) }.to_bytes()
            }
            _ => return None,
        };
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        std::str::from_utf8(&bytes[..end]).ok().map(str::to_owned)
    }

    /// Reads an octet string (`OCTET_STRING` or `OCTET_PTR`).
    pub fn get_octets(&self) -> Option<Vec<u8>> {
        let p = self.raw();
        if p.data.is_null() {
            return None;
        }
        match p.data_type {
            // SAFETY: an OCTET_STRING holds data_size bytes at data.
            OSSL_PARAM_OCTET_STRING => Some(
                unsafe { std::slice::from_raw_parts(p.data as *const u8, p.data_size) }.to_vec(),
            ),
            OSSL_PARAM_OCTET_PTR => {
                // SAFETY: an OCTET_PTR's data points at a `const void *`
                // followed by data_size bytes.
                let d = unsafe { *(p.data as *const *const u8) };
                if d.is_null() {
                    return None;
                }
                // SAFETY: as above.
                Some(unsafe { std::slice::from_raw_parts(d, p.data_size) }.to_vec())
            }
            _ => None,
        }
    }

    /// Reads an unsigned big number as big-endian bytes without leading zeros.
    pub fn get_bn_be(&self) -> Option<Vec<u8>> {
        let p = self.raw();
        if p.data.is_null() || p.data_type != OSSL_PARAM_UNSIGNED_INTEGER {
            return None;
        }
        // SAFETY: data holds data_size bytes.
        let src = unsafe { std::slice::from_raw_parts(p.data as *const u8, p.data_size) };
        let mut be: Vec<u8> = if cfg!(target_endian = "little") {
            src.iter().rev().copied().collect()
        } else {
            src.to_vec()
        };
        let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        be.drain(..first);
        Some(be)
    }

    fn set_return_size(&self, n: usize) {
        // SAFETY: the caller owns a writable OSSL_PARAM array.
        unsafe { (*self.p).return_size = n };
    }

    /// Writes an integer into an INTEGER/UNSIGNED_INTEGER of the caller's
    /// width, or as a decimal UTF-8 string if that is what was asked for.
    pub fn set_i64(&self, v: i64) -> bool {
        let p = self.raw();
        match p.data_type {
            OSSL_PARAM_INTEGER | OSSL_PARAM_UNSIGNED_INTEGER => {
                let size = p.data_size;
                if !(1..=8).contains(&size) {
                    return false;
                }
                if p.data_type == OSSL_PARAM_UNSIGNED_INTEGER && v < 0 {
                    return false;
                }
                let fits = if size == 8 {
                    true
                } else if p.data_type == OSSL_PARAM_INTEGER {
                    let bits = size * 8;
                    v >= -(1i64 << (bits - 1)) && v < (1i64 << (bits - 1))
                } else {
                    (v as u64) < (1u64 << (size * 8))
                };
                if !fits {
                    return false;
                }
                self.set_return_size(size);
                if p.data.is_null() {
                    return true;
                }
                let bytes = if cfg!(target_endian = "little") {
                    v.to_le_bytes()[..size].to_vec()
                } else {
                    v.to_be_bytes()[8 - size..].to_vec()
                };
                // SAFETY: data holds data_size == size writable bytes.
                unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), p.data as *mut u8, size) };
                true
            }
            OSSL_PARAM_UTF8_STRING => self.set_str(&v.to_string()),
            _ => false,
        }
    }

    /// Writes a UTF-8 string (NUL-terminated when there is room, as OpenSSL does).
    pub fn set_str(&self, s: &str) -> bool {
        let p = self.raw();
        if p.data_type != OSSL_PARAM_UTF8_STRING {
            return false;
        }
        self.set_return_size(s.len());
        if p.data.is_null() {
            return true;
        }
        if p.data_size < s.len() {
            return false;
        }
        // SAFETY: data holds data_size >= len writable bytes.
        unsafe {
            ptr::copy_nonoverlapping(s.as_ptr(), p.data as *mut u8, s.len());
            if s.len() < p.data_size {
                *(p.data as *mut u8).add(s.len()) = 0;
            }
        }
        true
    }

    /// Points a UTF8_PTR parameter at a static string.
    pub fn set_utf8_ptr(&self, s: &'static std::ffi::CStr) -> bool {
        let p = self.raw();
        if p.data_type != OSSL_PARAM_UTF8_PTR || p.data.is_null() {
            return false;
        }
        // SAFETY: a UTF8_PTR's data is a writable `const char *` slot; the
        // string is static.
        unsafe { *(p.data as *mut *const c_char) = s.as_ptr() };
        self.set_return_size(s.to_bytes().len());
        true
    }

    /// Writes an octet string.
    pub fn set_octets(&self, v: &[u8]) -> bool {
        let p = self.raw();
        if p.data_type != OSSL_PARAM_OCTET_STRING {
            return false;
        }
        self.set_return_size(v.len());
        if p.data.is_null() {
            return true;
        }
        if p.data_size < v.len() {
            return false;
        }
        // SAFETY: data holds data_size >= len writable bytes.
        unsafe { ptr::copy_nonoverlapping(v.as_ptr(), p.data as *mut u8, v.len()) };
        true
    }

    /// Writes an unsigned big number given big-endian, padded to the caller's
    /// buffer in native byte order (OpenSSL's BIGNUM parameter encoding).
    pub fn set_bn_be(&self, be: &[u8]) -> bool {
        let p = self.raw();
        if p.data_type != OSSL_PARAM_UNSIGNED_INTEGER {
            return false;
        }
        let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
        let be = &be[first..];
        let len = be.len().max(1);
        self.set_return_size(len);
        if p.data.is_null() {
            return true;
        }
        if p.data_size < len {
            return false;
        }
        let mut out = vec![0u8; p.data_size];
        let n = out.len();
        out[n - be.len()..].copy_from_slice(be);
        if cfg!(target_endian = "little") {
            out.reverse();
        }
        // SAFETY: data holds data_size writable bytes.
        unsafe { ptr::copy_nonoverlapping(out.as_ptr(), p.data as *mut u8, n) };
        self.set_return_size(n);
        true
    }
}

/// Iterates over a caller's `OSSL_PARAM` array up to its terminator.
pub struct ParamIter {
    p: *mut OSSL_PARAM,
}

/// Iterates over `params`; a null array is empty.
///
/// # Safety
/// `params` must be null or point to an `OSSL_PARAM` array terminated by an
/// entry whose key is null, valid for as long as the iterator and its items live.
pub unsafe fn iter(params: *const OSSL_PARAM) -> ParamIter {
    ParamIter {
        p: params as *mut OSSL_PARAM,
    }
}

impl Iterator for ParamIter {
    type Item = Param;
    fn next(&mut self) -> Option<Param> {
        if self.p.is_null() {
            return None;
        }
        // SAFETY: the array is terminated (contract of `iter`); we never read
        // past the terminator.
        unsafe {
            if (*self.p).key.is_null() {
                return None;
            }
            let cur = self.p;
            self.p = self.p.add(1);
            Some(Param { p: cur })
        }
    }
}

/// Finds the parameter named `key` (a NUL-terminated constant from `ffi`).
///
/// # Safety
/// As for [`iter`].
pub unsafe fn locate(params: *const OSSL_PARAM, key: &[u8]) -> Option<Param> {
    let want = CStr::from_bytes_with_nul(key).ok()?.to_str().ok()?;
    // SAFETY: forwarded contract.
    unsafe { iter(params) }.find(|p| p.key() == want)
}

/// A static, terminated parameter description table (gettable/settable lists).
#[repr(transparent)]
pub struct ParamTable<const N: usize>(pub [OSSL_PARAM; N]);

// SAFETY: the tables only hold pointers to static, immutable C strings and
// null data pointers; nobody writes through them.
unsafe impl<const N: usize> Sync for ParamTable<N> {}

impl<const N: usize> ParamTable<N> {
    /// The table as the pointer OpenSSL expects.
    pub fn as_ptr(&'static self) -> *const OSSL_PARAM {
        self.0.as_ptr()
    }
}

/// One entry of a description table.
pub const fn describe(key: &'static [u8], data_type: u32) -> OSSL_PARAM {
    OSSL_PARAM {
        key: key.as_ptr() as *const c_char,
        data_type,
        data: ptr::null_mut::<c_void>(),
        data_size: 0,
        return_size: usize::MAX,
    }
}

/// The terminator of a description table.
pub const END: OSSL_PARAM = OSSL_PARAM {
    key: ptr::null(),
    data_type: 0,
    data: ptr::null_mut(),
    data_size: 0,
    return_size: 0,
};

/// An `OSSL_PARAM` array the provider builds to pass to OpenSSL (store
/// objects, exports): owns the storage its entries point to.
#[derive(Default)]
pub struct ParamBuilder {
    keys: Vec<&'static [u8]>,
    values: Vec<(u32, Vec<u8>)>,
}

impl ParamBuilder {
    /// An empty array.
    pub fn new() -> ParamBuilder {
        ParamBuilder::default()
    }

    /// Adds a native `int`.
    pub fn int(mut self, key: &'static [u8], v: i32) -> Self {
        self.keys.push(key);
        self.values
            .push((OSSL_PARAM_INTEGER, v.to_ne_bytes().to_vec()));
        self
    }

    /// Adds a UTF-8 string (stored NUL-terminated, size without the NUL).
    pub fn utf8(mut self, key: &'static [u8], v: &str) -> Self {
        let mut b = v.as_bytes().to_vec();
        b.push(0);
        self.keys.push(key);
        self.values.push((OSSL_PARAM_UTF8_STRING, b));
        self
    }

    /// Adds an octet string.
    pub fn octets(mut self, key: &'static [u8], v: &[u8]) -> Self {
        self.keys.push(key);
        self.values.push((OSSL_PARAM_OCTET_STRING, v.to_vec()));
        self
    }

    /// Adds an unsigned big number given big-endian.
    pub fn bn_be(mut self, key: &'static [u8], be: &[u8]) -> Self {
        let mut v = be.to_vec();
        if v.is_empty() {
            v.push(0);
        }
        if cfg!(target_endian = "little") {
            v.reverse();
        }
        self.keys.push(key);
        self.values.push((OSSL_PARAM_UNSIGNED_INTEGER, v));
        self
    }

    /// Builds the terminated array; valid while `self` lives and is not changed.
    pub fn build(&mut self) -> Vec<OSSL_PARAM> {
        let mut out: Vec<OSSL_PARAM> = self
            .keys
            .iter()
            .zip(self.values.iter_mut())
            .map(|(k, (t, v))| OSSL_PARAM {
                key: k.as_ptr() as *const c_char,
                data_type: *t,
                data: v.as_mut_ptr() as *mut c_void,
                data_size: if *t == OSSL_PARAM_UTF8_STRING {
                    v.len() - 1
                } else {
                    v.len()
                },
                return_size: usize::MAX,
            })
            .collect();
        out.push(END);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::OSSL_PKEY_PARAM_RSA_N;

    #[test]
    fn builder_round_trips_through_the_reader() {
        let mut b = ParamBuilder::new()
            .int(b"i\0", -5)
            .utf8(b"s\0", "hello")
            .octets(b"o\0", &[1, 2, 3])
            .bn_be(OSSL_PKEY_PARAM_RSA_N, &[0x01, 0x00, 0x01]);
        let arr = b.build();
        // SAFETY: `arr` is a terminated array that outlives the lookups.
        unsafe {
            assert_eq!(
                locate(arr.as_ptr(), b"i\0").and_then(|p| p.get_i64()),
                Some(-5)
            );
            assert_eq!(
                locate(arr.as_ptr(), b"s\0")
                    .and_then(|p| p.get_str())
                    .as_deref(),
                Some("hello")
            );
            assert_eq!(
                locate(arr.as_ptr(), b"o\0").and_then(|p| p.get_octets()),
                Some(vec![1, 2, 3])
            );
            assert_eq!(
                locate(arr.as_ptr(), OSSL_PKEY_PARAM_RSA_N).and_then(|p| p.get_bn_be()),
                Some(vec![1, 0, 1])
            );
            assert!(locate(arr.as_ptr(), b"missing\0").is_none());
        }
    }

    #[test]
    fn setters_honour_sizes_and_types() {
        let mut small = [0u8; 2];
        let mut int32 = 0i32;
        let mut raw = [
            OSSL_PARAM {
                key: c"s".as_ptr(),
                data_type: OSSL_PARAM_UTF8_STRING,
                data: small.as_mut_ptr() as *mut c_void,
                data_size: 2,
                return_size: 0,
            },
            OSSL_PARAM {
                key: c"i".as_ptr(),
                data_type: OSSL_PARAM_INTEGER,
                data: &mut int32 as *mut i32 as *mut c_void,
                data_size: 4,
                return_size: 0,
            },
            END,
        ];
        // SAFETY: `raw` is terminated and its buffers outlive the calls.
        unsafe {
            let s = locate(raw.as_mut_ptr(), b"s\0").expect("s");
            assert!(!s.set_str("too long"));
            assert_eq!(s.raw().return_size, 8);
            let i = locate(raw.as_mut_ptr(), b"i\0").expect("i");
            assert!(i.set_i64(-2));
            assert!(!i.set_i64(1 << 40));
        }
        assert_eq!(int32, -2);
        let _ = &mut raw;
    }
}
