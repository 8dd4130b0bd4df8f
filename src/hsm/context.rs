//! The process-wide PKCS#11 library context: loaded and initialised on first use (OS locking),
//! finalised and initialised again by recovery.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use super::error::{Error, ck};

/// The process-wide PKCS#11 context: one module; `epoch` counts its initialisations.
struct Loaded {
    module: PathBuf,
    ctx: Pkcs11,
    epoch: u64,
}

static CONTEXT: Mutex<Option<Loaded>> = Mutex::new(None);

/// The current initialisation's epoch, if the library is loaded.
pub(super) fn context_epoch() -> Option<u64> {
    lock(&CONTEXT).as_ref().map(|l| l.epoch)
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

/// The context for `module` (loaded and initialised on first use) and its epoch.
pub(super) fn context(module: &Path) -> Result<(Pkcs11, u64), Error> {
    let mut guard = lock(&CONTEXT);
    if let Some(loaded) = guard.as_ref() {
        return if loaded.module == module {
            Ok((loaded.ctx.clone(), loaded.epoch))
        } else {
            Err(Error::OtherModule(loaded.module.clone()))
        };
    }
    let ctx = Pkcs11::new(module).map_err(|e| Error::Module {
        module: module.to_path_buf(),
        reason: e.to_string(),
    })?;
    ctx.initialize(init_args()).map_err(ck("C_Initialize"))?;
    *guard = Some(Loaded {
        module: module.to_path_buf(),
        ctx: ctx.clone(),
        epoch: 1,
    });
    Ok((ctx, 1))
}

/// `C_Finalize` and `C_Initialize` the library again, unless someone already did since `seen`
/// (then the current context is returned). The caller makes sure none of its calls is inside
/// the library (PKCS#11 v2.40 5.4.2). The module stays loaded: the same `Pkcs11` is reused.
pub(super) fn reinitialize(module: &Path, seen: u64) -> Result<(Pkcs11, u64), Error> {
    let mut guard = lock(&CONTEXT);
    let loaded = guard.as_mut().ok_or_else(|| Error::Module {
        module: module.to_path_buf(),
        reason: "not loaded".to_string(),
    })?;
    if loaded.epoch != seen {
        return Ok((loaded.ctx.clone(), loaded.epoch));
    }
    // CKR_CRYPTOKI_NOT_INITIALIZED (after a failed C_Initialize) or a dead connection: either
    // way the library is not initialised afterwards, which is all that is needed here.
    let _ = loaded.ctx.clone().finalize();
    loaded.epoch += 1;
    loaded
        .ctx
        .initialize(init_args())
        .map_err(ck("C_Initialize"))?;
    Ok((loaded.ctx.clone(), loaded.epoch))
}
