// The C entry points of the Kryoptic PKCS#11 module, as crates.io
// `kryoptic` 1.5.4 (src/lib.rs, Copyright 2023 Simo Sorce, Apache-2.0)
// exports them, without its FIPS provider entry point.

//! `libkryoptic_pkcs11.so`: Kryoptic's PKCS#11 module for dnsseal's tests.

use kryoptic_lib::fns::general::{fn_get_function_list, fn_get_interface, fn_get_interface_list};
use kryoptic_lib::pkcs11::*;

/// PKCS#11 C_GetFunctionList.
#[no_mangle]
pub extern "C" fn C_GetFunctionList(fnlist: CK_FUNCTION_LIST_PTR_PTR) -> CK_RV {
    fn_get_function_list(fnlist)
}

/// PKCS#11 3.0 C_GetInterface.
#[no_mangle]
pub extern "C" fn C_GetInterface(
    interface_name: CK_UTF8CHAR_PTR,
    version: CK_VERSION_PTR,
    interface: CK_INTERFACE_PTR_PTR,
    flags: CK_FLAGS,
) -> CK_RV {
    fn_get_interface(interface_name, version, interface, flags)
}

/// PKCS#11 3.0 C_GetInterfaceList.
#[no_mangle]
pub extern "C" fn C_GetInterfaceList(interfaces_list: CK_INTERFACE_PTR, count: CK_ULONG_PTR) -> CK_RV {
    fn_get_interface_list(interfaces_list, count)
}
