//! Tokens: selected by label or serial number (never by slot id), described for the transcript,
//! initialised (for SoftHSM), and logged in to.

use std::path::{Path, PathBuf};

use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use secrecy::SecretString;
use serde::Serialize;

use super::Hsm;
use super::context::context;
use super::error::{Error, ck};
use crate::secret::Pin;

/// How a token is selected: by its label or by its serial number (PKCS#11 `CK_TOKEN_INFO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// The token's label (CKA_LABEL of the token, trailing blanks ignored).
    Label(String),
    /// The token's serial number.
    Serial(String),
}

impl std::fmt::Display for TokenSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSelector::Label(l) => write!(f, "token label {l:?}"),
            TokenSelector::Serial(s) => write!(f, "token serial {s:?}"),
        }
    }
}

/// Facts about the PKCS#11 library and token, for the ceremony transcript.
#[derive(Clone, Debug, Serialize)]
pub struct TokenDescription {
    /// Path of the PKCS#11 module.
    pub module: PathBuf,
    /// `CK_INFO.libraryDescription`.
    pub library_description: String,
    /// `CK_INFO.manufacturerID`.
    pub library_manufacturer: String,
    /// `CK_INFO.libraryVersion`.
    pub library_version: String,
    /// `CK_INFO.cryptokiVersion`.
    pub cryptoki_version: String,
    /// Token label.
    pub label: String,
    /// Token serial number.
    pub serial: String,
    /// Token manufacturer.
    pub manufacturer: String,
    /// Token model.
    pub model: String,
}

fn find_slot(
    ctx: &Pkcs11,
    selector: &TokenSelector,
) -> Result<(Slot, cryptoki::slot::TokenInfo), Error> {
    let mut present = Vec::new();
    let mut found = Vec::new();
    for slot in ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))? {
        let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
        if !info.token_initialized() {
            continue;
        }
        let matches = match selector {
            TokenSelector::Label(l) => info.label().trim_end() == l,
            TokenSelector::Serial(s) => info.serial_number().trim_end() == s,
        };
        present.push(info.label().trim_end().to_string());
        if matches {
            found.push((slot, info));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::Token {
            selector: selector.to_string(),
            problem: format!("no such token (tokens present: {present:?})"),
        }),
        n => Err(Error::Token {
            selector: selector.to_string(),
            problem: format!("matches {n} tokens; select by serial number instead"),
        }),
    }
}

/// Finds the token and opens `size` sessions on it, logging the user in once (PKCS#11 login
/// state is shared by all of an application's sessions on a token).
pub(super) fn connect(
    ctx: &Pkcs11,
    selector: &TokenSelector,
    pin: &SecretString,
    size: usize,
) -> Result<(cryptoki::slot::TokenInfo, Vec<Session>), Error> {
    let (slot, info) = find_slot(ctx, selector)?;
    let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(ck("C_Login")(e)),
    }
    let mut sessions = vec![session];
    for _ in 1..size {
        sessions.push(ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?);
    }
    Ok((info, sessions))
}

impl Hsm {
    /// Initialises a free token slot with `label` and sets its user PIN (for SoftHSM tokens in
    /// development, tests and rehearsals; production HSMs are initialised with their own tools).
    pub fn init_token(
        module: &Path,
        label: &str,
        so_pin: &Pin,
        user_pin: &Pin,
    ) -> Result<(), Error> {
        let (ctx, _) = context(module)?;
        if find_slot(&ctx, &TokenSelector::Label(label.to_string())).is_ok() {
            return Err(Error::Token {
                selector: TokenSelector::Label(label.to_string()).to_string(),
                problem: "a token with this label exists already".to_string(),
            });
        }
        let mut free = None;
        for slot in ctx.get_slots_with_token().map_err(ck("C_GetSlotList"))? {
            let info = ctx.get_token_info(slot).map_err(ck("C_GetTokenInfo"))?;
            if !info.token_initialized() {
                free = Some(slot);
                break;
            }
        }
        let slot = free.ok_or_else(|| Error::Token {
            selector: TokenSelector::Label(label.to_string()).to_string(),
            problem: "no free (uninitialised) token slot".to_string(),
        })?;
        ctx.init_token(slot, &so_pin.to_auth_pin(), label)
            .map_err(ck("C_InitToken"))?;
        // The slot id may change once the token is initialised: find it again by label.
        let (slot, _) = find_slot(&ctx, &TokenSelector::Label(label.to_string()))?;
        let session = ctx.open_rw_session(slot).map_err(ck("C_OpenSession"))?;
        session
            .login(UserType::So, Some(&so_pin.to_auth_pin()))
            .map_err(ck("C_Login"))?;
        session
            .init_pin(&user_pin.to_auth_pin())
            .map_err(ck("C_InitPIN"))?;
        session.logout().map_err(ck("C_Logout"))?;
        Ok(())
    }
}
