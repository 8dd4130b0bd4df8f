/*
 * A PKCS#11 module that lies: a test-only wrapper around a real module (SoftHSM) whose C_Sign
 * returns a corrupted signature while a control file exists. Used by tests/bad_signature.rs to
 * prove that strongroom verifies every HSM signature before it writes or releases anything.
 *
 * Built by the test itself, into the test's temporary directory:
 *
 *   cc -shared -fPIC -o fault_sign.so fault_sign.c -ldl \
 *      -DREAL_MODULE='"/usr/lib/softhsm/libsofthsm2.so"' -DFAULT_FILE='"/tmp/x/corrupt"'
 *
 * C_GetFunctionList (PKCS#11 v2.40 section 5.2) loads REAL_MODULE in this process, copies its
 * CK_FUNCTION_LIST and replaces two entries: C_GetFunctionList (this one) and C_Sign (section
 * 5.11). The replacement C_Sign calls the real one and, when it filled a signature buffer
 * (pSignature not NULL and CKR_OK: not the length query of section 5.2's "Conventions for
 * functions returning output in a variable-length buffer") and FAULT_FILE exists, flips the
 * lowest bit of the signature's last byte. For CKM_ECDSA that is the last byte of s in r||s;
 * for CKM_RSA_PKCS the lowest bit of the signature integer: either way a well-formed signature
 * that does not verify. Every other function is the real module's, unchanged.
 *
 * The types and the function-list layout come from p11-kit's pkcs11.h (package libp11-kit-dev),
 * which follows PKCS#11 v2.40 section 3.6 (CK_FUNCTION_LIST: a CK_VERSION, then the function
 * pointers in the order of chapter 5).
 */
#include <dlfcn.h>
#include <stddef.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#ifndef REAL_MODULE
#error "define REAL_MODULE as the path of the real PKCS#11 module"
#endif
#ifndef FAULT_FILE
#error "define FAULT_FILE as the path of the control file"
#endif

static CK_FUNCTION_LIST wrapped;
static CK_C_Sign real_sign;

static CK_RV fault_sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                        CK_BYTE_PTR signature, CK_ULONG_PTR signature_len)
{
	CK_RV rv = real_sign(session, data, data_len, signature, signature_len);
	if (rv == CKR_OK && signature != NULL && signature_len != NULL && *signature_len > 0 &&
	    access(FAULT_FILE, F_OK) == 0) {
		signature[*signature_len - 1] ^= 0x01;
	}
	return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (real_sign == NULL) {
		void *real = dlopen(REAL_MODULE, RTLD_NOW | RTLD_LOCAL);
		if (real == NULL)
			return CKR_GENERAL_ERROR;
		CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(real, "C_GetFunctionList");
		CK_FUNCTION_LIST_PTR real_list = NULL;
		if (get == NULL || get(&real_list) != CKR_OK || real_list == NULL)
			return CKR_GENERAL_ERROR;
		wrapped = *real_list;
		wrapped.C_GetFunctionList = C_GetFunctionList;
		wrapped.C_Sign = fault_sign;
		real_sign = real_list->C_Sign;
	}
	*list = &wrapped;
	return CKR_OK;
}
