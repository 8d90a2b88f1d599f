//! The per-user policies of a user as the admin side resolves them (Lync's order): the
//! `Tag:` policy granted to them (Grant-Cs…Policy, recorded in CsUserPolicyAssignment) if it
//! still exists, else the `Site:` one, else Global, else Lync's defaults. Used by the rules
//! of meetings (CsConferencingPolicy), PINs (CsPinPolicy, CsDialPlan) and enterprise voice
//! (CsVoicePolicy).

use confab_policy::{Document, Scope, UserPolicyAssignment};
use confab_store::meetings::normalize_address;
use confab_store::{Store, StoreError, User};
use serde_json::{Map, Value};

/// The user stored under `user_key` (`user@domain`, any case, `sip:` allowed) with the
/// per-user policy assignment recorded for them.
pub(crate) fn user_and_assignment(
    store: &Store,
    user_key: &str,
) -> Result<(User, UserPolicyAssignment), StoreError> {
    let key = normalize_address(user_key)?;
    let (u, d) = key.split_once('@').unwrap_or((&key, ""));
    let user = store
        .get_user(u, d)?
        .ok_or_else(|| StoreError::NoSuchUser(key.clone()))?;
    // Grant- records the assignment under the user's address as stored
    for id in [user.address(), key.clone()] {
        if let Some(doc) = store.get_config(UserPolicyAssignment::KIND, &id)? {
            let a = serde_json::from_value(Value::Object(doc.body)).unwrap_or_default();
            return Ok((user, a));
        }
    }
    Ok((user, UserPolicyAssignment::default()))
}

/// A per-user policy document from the store's documents of its kind: the `Tag:<tag>` one,
/// else `Site:<site>`, else Global; `None`: the defaults apply.
pub fn resolve_policy_body(
    docs: &[(String, Map<String, Value>)],
    tag: Option<&str>,
    site: Option<&str>,
) -> Option<Map<String, Value>> {
    let find = |f: &dyn Fn(Scope<'_>) -> bool| {
        docs.iter()
            .find(|(id, _)| f(Scope::of(id)))
            .map(|(_, b)| b.clone())
    };
    tag.and_then(|tag| find(&|s| matches!(s, Scope::Tag(t) if t.eq_ignore_ascii_case(tag))))
        .or_else(|| {
            site.and_then(|site| {
                find(&|s| matches!(s, Scope::Site(x) if x.eq_ignore_ascii_case(site)))
            })
        })
        .or_else(|| find(&|s| matches!(s, Scope::Global)))
}

/// The document of kind `T` in force for `tag` (a per-user grant) and `site`, resolved as
/// [`resolve_policy_body`] does, typed; Lync's defaults when none applies.
pub(crate) fn policy_of<T: Document + Default>(
    store: &Store,
    tag: Option<&str>,
    site: Option<&str>,
) -> Result<T, StoreError> {
    let docs: Vec<(String, Map<String, Value>)> = store
        .list_config(T::DEF.noun)?
        .into_iter()
        .map(|d| (d.identity, d.body))
        .collect();
    Ok(resolve_policy_body(&docs, tag, site)
        .map(|b| T::from_body(&b).0)
        .unwrap_or_default())
}
