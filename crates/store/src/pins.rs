//! Users' dial-in PINs (Lync's client PINs): salted hashes, history, failed sign-ins and
//! lockout; and finding a user by the number or extension of their LineURI.
//! (Interface stubs: the PIN work fills them in.)

use crate::{Store, StoreError, User};

/// What `Get-CsClientPinInfo` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinInfo {
    pub is_pin_set: bool,
    pub is_locked_out: bool,
    /// Unix seconds of the last change.
    pub last_changed: Option<i64>,
    /// Failed sign-ins since the last success or change.
    pub failed_attempts: u32,
}

/// The result of checking a PIN entered on a phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinCheck {
    Valid,
    /// Wrong; `failures` counted so far (the PIN locks when it reaches the maximum).
    Wrong { failures: u32 },
    LockedOut,
    NotSet,
    Expired,
}

impl Store {
    /// Stores a new PIN for `user` (`user@domain`) as a salted hash, unlocks it and clears
    /// its failures; refuses (`StoreError::Invalid`) one of the last `history` PINs.
    pub fn set_client_pin(&self, user: &str, pin: &str, history: u32, now: i64) -> Result<(), StoreError> {
        let _ = (user, pin, history, now);
        Err(StoreError::Invalid("PINs are not implemented yet".into()))
    }

    pub fn client_pin_info(&self, user: &str) -> Result<PinInfo, StoreError> {
        let _ = user;
        Ok(PinInfo::default())
    }

    /// Locks the user's PIN (true if it was set).
    pub fn lock_client_pin(&self, user: &str) -> Result<bool, StoreError> {
        let _ = user;
        Ok(false)
    }

    /// Unlocks the user's PIN and clears its failures (true if it was set).
    pub fn unlock_client_pin(&self, user: &str) -> Result<bool, StoreError> {
        let _ = user;
        Ok(false)
    }

    /// Checks a PIN entered on a phone: a failure is counted, and at `max_failures` the PIN
    /// locks; a PIN older than `lifetime_days` (0: never) is `Expired`; success clears the
    /// failures.
    pub fn verify_client_pin(
        &self,
        user: &str,
        pin: &str,
        max_failures: u32,
        lifetime_days: u32,
        now: i64,
    ) -> Result<PinCheck, StoreError> {
        let _ = (user, pin, max_failures, lifetime_days, now);
        Ok(PinCheck::NotSet)
    }

    /// The enabled user whose LineURI carries this number or extension (`digits`, as keyed
    /// on a phone: `tel:+14255550100;ext=100` matches "14255550100" and "100").
    pub fn user_by_number(&self, digits: &str) -> Result<Option<User>, StoreError> {
        let _ = digits;
        Ok(None)
    }
}
