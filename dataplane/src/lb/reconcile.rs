//! One reconcile pass: read the kernel, diff against the desired state, apply the
//! minimal change, and only then publish the names the kernel now serves.
//!
//! The caller runs passes on every change of the desired state and on a timer. Each
//! pass re-reads the kernel, so whatever changed it behind hawser's back (a rule deleted
//! by hand, state left by a previous run, a half-applied pass) is repaired by the next
//! one; dcos-net kept its own copy of IPVS's state and so never saw such drift. Over a
//! kernel that already holds the desired state a pass sends nothing, which is what makes
//! a restart idempotent.

use super::desired::Desired;
use super::kernel::{Kernel, KernelError};
use super::names::ProgrammedNames;
use super::state::{Change, Programmed, diff};

/// What one pass did.
pub type Pass = crate::kernel::Pass<Change>;

/// Drives one kernel backend towards desired states.
pub struct Reconciler<K: Kernel> {
    kernel: K,
    names: ProgrammedNames,
    /// What the kernel held after the last successful pass.
    programmed: Programmed,
}

impl<K: Kernel> Reconciler<K> {
    pub fn new(kernel: K, names: ProgrammedNames) -> Reconciler<K> {
        Reconciler {
            kernel,
            names,
            programmed: Programmed::default(),
        }
    }

    /// What the kernel held after the last successful pass.
    pub fn programmed(&self) -> &Programmed {
        &self.programmed
    }

    /// Bring the kernel to `desired`. On error the names stay as they were: a name is
    /// only published once its VIP is known to be programmed.
    pub fn pass(&mut self, desired: &Desired) -> Result<Pass, KernelError> {
        let current = self.kernel.read()?;
        let changes = diff(&current, &desired.state);
        let messages = self.kernel.apply(&current, &changes)?;
        self.programmed = desired.state.clone();
        self.names.set(desired.names.clone());
        Ok(Pass { changes, messages })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use hawser_core::NodeId;

    use super::*;
    use crate::lb::names::NameRanges;
    use crate::lb::vip::{Backend, Vip};

    /// A kernel in memory that can be made to fail, and counts what it was sent.
    #[derive(Default)]
    struct Memory {
        state: Programmed,
        fail: bool,
    }

    impl Kernel for &mut Memory {
        fn read(&mut self) -> Result<Programmed, KernelError> {
            Ok(self.state.clone())
        }
        fn apply(&mut self, _: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
            if self.fail {
                return Err(KernelError::Failed {
                    op: "apply".into(),
                    error: "refused".into(),
                });
            }
            for c in changes {
                self.state.apply(c);
            }
            Ok(changes.len())
        }
    }

    fn desired_web(weight: u32) -> Desired {
        let vip: Vip = "tcp://web:80".parse().unwrap();
        let vips: BTreeMap<Vip, Vec<Backend>> = [(
            vip,
            vec![Backend {
                node: NodeId(1),
                addr: "198.18.1.2:8080".parse().unwrap(),
                weight,
            }],
        )]
        .into();
        crate::lb::desired(&vips, |_| true, NameRanges::default())
    }

    #[test]
    fn a_pass_converges_repairs_drift_and_then_sends_nothing() {
        let mut kernel = Memory::default();
        let names = ProgrammedNames::new();
        let want = desired_web(1);
        {
            let mut r = Reconciler::new(&mut kernel, names.clone());
            let pass = r.pass(&want).unwrap();
            assert_eq!(pass.changes.len(), 3, "address, service, destination");
            assert_eq!(r.pass(&want).unwrap(), Pass::default());
        }
        assert_eq!(names.get("web").len(), 1);
        // Drift: the service disappears behind our back; a new reconciler (a restart)
        // puts back exactly that.
        kernel.state.services.clear();
        let mut r = Reconciler::new(&mut kernel, names.clone());
        let pass = r.pass(&want).unwrap();
        assert_eq!(pass.changes.len(), 2, "{:?}", pass.changes);
    }

    #[test]
    fn names_wait_for_a_successful_apply() {
        let mut kernel = Memory {
            fail: true,
            ..Memory::default()
        };
        let names = ProgrammedNames::new();
        let mut r = Reconciler::new(&mut kernel, names.clone());
        assert!(r.pass(&desired_web(1)).is_err());
        assert!(names.get("web").is_empty());
        assert_eq!(r.programmed(), &Programmed::default());
    }
}
