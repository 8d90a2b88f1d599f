//! Lync's configuration documents (confab-policy's typed CsDialPlan, CsTrunkConfiguration,
//! CsVoiceRoute) as this crate reads them: the one conversion, used by the admin shell's
//! Test- cmdlets and by the server's routing.

use crate::normalize::Rule;
use crate::route::Route;
use confab_policy::{DialPlan, TrunkConfiguration, VoiceRoute};

/// A dial plan's normalization rules, in the plan's order with their Priority.
pub fn normalization_rules(plan: &DialPlan) -> Vec<Rule> {
    plan.normalization_rules
        .iter()
        .map(|r| Rule {
            name: r.name.clone(),
            pattern: r.pattern.clone(),
            translation: r.translation.clone(),
            priority: r.priority,
            is_internal_extension: r.is_internal_extension,
        })
        .collect()
}

/// A trunk configuration's outbound translation rules.
pub fn outbound_rules(trunk: &TrunkConfiguration) -> Vec<Rule> {
    trunk
        .outbound_translation_rules_list
        .iter()
        .map(|r| Rule {
            name: r.name.clone(),
            pattern: r.pattern.clone(),
            translation: r.translation.clone(),
            priority: r.priority,
            is_internal_extension: false,
        })
        .collect()
}

/// A voice route (its Identity is its name).
pub fn voice_route(identity: &str, r: &VoiceRoute) -> Route {
    Route {
        name: identity.to_string(),
        number_pattern: r.number_pattern.clone(),
        pstn_usages: r.pstn_usages.clone(),
        gateways: r.pstn_gateway_list.clone(),
        priority: r.priority,
        suppress_caller_id: r.suppress_caller_id,
        alternate_caller_id: r.alternate_caller_id.clone(),
    }
}
