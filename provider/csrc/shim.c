/*
 * The one thing Rust cannot do portably: call the core's
 * core_vset_error(handle, reason, fmt, va_list). We give it a va_list built
 * by a variadic C function, always with the format "%s" so the message is
 * never interpreted as a format string.
 */
#include <stdarg.h>
#include <stddef.h>
#include <openssl/core.h>
#include <openssl/core_dispatch.h>

static void ks_call_vset(OSSL_FUNC_core_vset_error_fn *vset,
                         const OSSL_CORE_HANDLE *handle, uint32_t reason,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vset(handle, reason, fmt, ap);
    va_end(ap);
}

/*
 * Put one error on OpenSSL's error stack: a new record, its origin, then the
 * reason code and the human message. Any function pointer may be NULL (a core
 * that does not offer it): the parts that can be recorded are.
 */
void ks_shim_raise_error(OSSL_FUNC_core_new_error_fn *new_error,
                         OSSL_FUNC_core_set_error_debug_fn *set_debug,
                         OSSL_FUNC_core_vset_error_fn *vset,
                         const OSSL_CORE_HANDLE *handle, uint32_t reason,
                         const char *file, int line, const char *func,
                         const char *message)
{
    if (new_error == NULL || vset == NULL)
        return;
    new_error(handle);
    if (set_debug != NULL)
        set_debug(handle, file, line, func);
    if (message != NULL)
        ks_call_vset(vset, handle, reason, "%s", message);
    else
        ks_call_vset(vset, handle, reason, NULL);
}
