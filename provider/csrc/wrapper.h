/* The OpenSSL headers bindgen reads: provider ABI types and names only. */
#include <openssl/opensslv.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <openssl/rsa.h>
#include <openssl/evp.h>
