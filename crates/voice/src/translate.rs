//! Trunk outbound translation (CsOutboundTranslationRule): the trunk's rules by Priority,
//! the first whose Pattern matches rewrites the number; no match keeps it.

use crate::dotnet::compiled;
use crate::first_by_priority;
use crate::normalize::Rule;

/// Trunk outbound translation: same Rule shape, first by Priority wins (ties in the order
/// given); no match keeps the number. Invalid patterns never match.
pub fn translate(rules: &[Rule], number: &str) -> String {
    first_by_priority(
        rules,
        |r| r.priority,
        |rule| compiled(&rule.pattern)?.replace(number, &rule.translation),
    )
    .unwrap_or_else(|| number.to_owned())
}
