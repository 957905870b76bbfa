//! One reconcile pass for the overlay: read the kernel, diff against the desired
//! state, apply the minimal change.
//!
//! Every pass reads the kernel afresh rather than trusting what the last pass
//! programmed, so an entry deleted by hand, a device left by a previous run or a pass
//! that failed half-way is repaired by the next one; over a kernel that already holds
//! the desired state a pass sends nothing, which makes an agent's restart harmless to
//! running containers. (The load balancer's pass also publishes names, so the two
//! share only [`crate::kernel::Pass`].)

use super::kernel::{Kernel, KernelError};
use super::state::{Change, Programmed, diff};

/// What one pass did.
pub type Pass = crate::kernel::Pass<Change>;

/// Rounds of read, diff and apply in one pass at most (see [`Reconciler::pass`]).
pub const ROUNDS: usize = 3;

/// Drives one kernel backend towards desired states.
pub struct Reconciler<K: Kernel> {
    kernel: K,
    /// What the kernel held at the end of the last successful pass, as read back.
    programmed: Programmed,
}

impl<K: Kernel> Reconciler<K> {
    pub fn new(kernel: K) -> Reconciler<K> {
        Reconciler {
            kernel,
            programmed: Programmed::default(),
        }
    }

    /// What the kernel held at the end of the last successful pass, as read back (so
    /// the API says what the kernel holds, not what was asked of it).
    pub fn programmed(&self) -> &Programmed {
        &self.programmed
    }

    /// Bring the kernel to `want`. A kernel may do more than it is asked: removing a
    /// device's primary address removes its secondary addresses in the same range and
    /// the routes through them (a node whose VTEP address moved saw its new address
    /// and every route go). So after applying changes the pass reads the kernel back
    /// and goes again, up to [`ROUNDS`] rounds, rather than leaving the repair to the
    /// next timer.
    pub fn pass(&mut self, want: &Programmed) -> Result<Pass, KernelError> {
        let mut current = self.kernel.read()?;
        let mut done = Pass::default();
        for _ in 0..ROUNDS {
            let changes = diff(&current, want);
            if changes.is_empty() {
                break;
            }
            done.messages += self.kernel.apply(&current, &changes)?;
            done.changes.extend(changes);
            current = self.kernel.read()?;
        }
        self.programmed = current;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::overlay::state::{Device, IfAddr, Link};
    use crate::overlay::vtep::Mac;

    /// A kernel in memory that applies at most `budget` changes per apply before
    /// refusing, as a kernel may fail half-way through a pass.
    struct HalfWay {
        state: Programmed,
        budget: usize,
    }

    impl Kernel for &mut HalfWay {
        fn read(&mut self) -> Result<Programmed, KernelError> {
            Ok(self.state.clone())
        }

        fn apply(&mut self, _: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
            for (n, c) in changes.iter().enumerate() {
                if n == self.budget {
                    return Err(crate::kernel::failed(c.to_string(), "refused"));
                }
                self.state.apply(c);
            }
            Ok(changes.len())
        }
    }

    fn want() -> Programmed {
        let mut link = Link::new(Device {
            vni: 1024,
            port: 64000,
            mtu: 1420,
            mac: Mac([2, 0, 0, 0, 0, 1]),
            local: IpAddr::from([198, 18, 0, 1]),
        });
        link.up = true;
        let vtep = IpAddr::from([100, 64, 0, 2]);
        link.addresses.insert(IfAddr {
            ip: IpAddr::from([100, 64, 0, 1]),
            len: 20,
        });
        link.neighbours.insert(vtep, Mac([2, 0, 0, 0, 0, 2]));
        link.fdb
            .insert(Mac([2, 0, 0, 0, 0, 2]), IpAddr::from([198, 18, 0, 2]));
        link.routes.insert("198.19.2.0/24".parse().unwrap(), vtep);
        Programmed {
            links: [("vtep1024".to_string(), link)].into(),
        }
    }

    /// A kernel that, like Linux without `promote_secondaries`, removes every other
    /// address (and the routes, which go through them) with the first one removed.
    struct Cascading(Programmed);

    impl Kernel for &mut Cascading {
        fn read(&mut self) -> Result<Programmed, KernelError> {
            Ok(self.0.clone())
        }

        fn apply(&mut self, _: &Programmed, changes: &[Change]) -> Result<usize, KernelError> {
            for c in changes {
                self.0.apply(c);
                if let Change::RemoveAddress(name, _) = c {
                    let link = self.0.links.get_mut(name).unwrap();
                    link.addresses.clear();
                    link.routes.clear();
                }
            }
            Ok(changes.len())
        }
    }

    #[test]
    fn a_kernel_that_removes_more_than_asked_is_repaired_within_the_pass() {
        let mut kernel = Cascading(want());
        let mut moved = want();
        let link = moved.links.get_mut("vtep1024").unwrap();
        link.addresses = [IfAddr {
            ip: IpAddr::from([100, 64, 0, 9]),
            len: 20,
        }]
        .into();
        let mut r = Reconciler::new(&mut kernel);
        let pass = r.pass(&moved).unwrap();
        assert_eq!(r.programmed(), &moved, "{pass:?}");
        // Round 1: add the new address, remove the old (which takes the new one and the
        // route along); round 2: the address and the route again.
        assert_eq!(pass.changes.len(), 4, "{pass:?}");
        assert_eq!(kernel.0, moved);
    }

    #[test]
    fn a_failed_pass_is_finished_by_the_next_and_drift_is_repaired() {
        let want = want();
        let mut kernel = HalfWay {
            state: Programmed::default(),
            budget: 2,
        };
        {
            let mut r = Reconciler::new(&mut kernel);
            assert!(r.pass(&want).is_err(), "refused after two changes");
            assert_eq!(r.programmed(), &Programmed::default());
        }
        assert_eq!(kernel.state.links["vtep1024"].addresses.len(), 1);
        kernel.budget = usize::MAX;
        let mut r = Reconciler::new(&mut kernel);
        let pass = r.pass(&want).unwrap();
        assert_eq!(pass.changes.len(), 4, "up, neighbour, fdb, route: {pass:?}");
        assert_eq!(r.programmed(), &want);
        assert_eq!(r.pass(&want).unwrap(), Pass::default());
        drop(r);
        // Drift: a route deleted by hand comes back, and nothing else is touched.
        kernel
            .state
            .links
            .get_mut("vtep1024")
            .unwrap()
            .routes
            .clear();
        let pass = Reconciler::new(&mut kernel).pass(&want).unwrap();
        assert!(
            matches!(pass.changes[..], [Change::SetRoute(..)]),
            "{pass:?}"
        );
        assert_eq!(kernel.state, want);
    }
}
