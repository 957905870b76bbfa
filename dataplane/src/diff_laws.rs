//! The contract every "state + diff" pair in this crate keeps, checked once for all
//! of them (the load balancer's and the overlay's kernel states): applying
//! `diff(a, b)` to `a` in order gives `b`, and the diff of a state with itself is
//! empty (so a pass over a kernel that already holds the desired state sends nothing).

use std::fmt::Debug;

use proptest::prelude::*;

/// Check both laws on `a` and `b`.
pub(crate) fn check<S: Clone + PartialEq + Debug, C: Debug>(
    a: &S,
    b: &S,
    diff: impl Fn(&S, &S) -> Vec<C>,
    apply: impl Fn(&mut S, &C),
) -> Result<(), TestCaseError> {
    let mut state = a.clone();
    for c in diff(a, b) {
        apply(&mut state, &c);
    }
    prop_assert_eq!(&state, b);
    let same = diff(a, a);
    prop_assert!(same.is_empty(), "diff of a state with itself: {:?}", same);
    Ok(())
}
