//! The timer groups' registry: which jobs share a timer (one group per distinct schedule),
//! and which runners were started. Membership only: the tasks themselves are
//! [`super::timers`]', which starts what [`TimerGroups::place`] asks for.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::effective::GroupKey;
use super::slot::{Member, RegistryHeld, Slot, lock};
use crate::schedule::Schedule;

/// The jobs of one timer group; read by its task at each fire time, so a job that joins or
/// leaves takes part from the next tick on, without restarting the timer.
#[derive(Clone)]
pub(super) struct Members(Arc<Mutex<Vec<Arc<Slot>>>>);

impl Members {
    /// Call `f` for each member, under the list's lock, without copying the list (a job
    /// that joins or leaves meanwhile waits for the one pass). A member is seen as a
    /// [`Member`], which cannot reach a slot's settings lock: the registry takes that lock
    /// before this one.
    pub(super) fn each(&self, mut f: impl FnMut(Member<'_>)) {
        lock(&self.0).iter().for_each(|slot| f(Member(slot)));
    }
}

struct Group {
    members: Members,
    /// Stops the group's task once its last member has left.
    stop: CancellationToken,
}

/// A new group's timer, to be started by the caller of [`TimerGroups::place`].
pub(super) struct NewTimer {
    pub(super) schedule: Schedule,
    pub(super) members: Members,
    pub(super) stop: CancellationToken,
}

/// What [`TimerGroups::place`] asks its caller to start.
#[derive(Default)]
pub(super) struct Placed {
    /// The timer of a group created for the slot.
    pub(super) timer: Option<NewTimer>,
    /// Whether the slot's runner must be started (first time in a group).
    pub(super) start_runner: bool,
}

/// Every timer group of a scheduler: one per distinct schedule, created when its first job
/// joins and stopped when its last job leaves, so jobs sharing a schedule (thousands of
/// them, possibly) still cost one timer between them, also after runtime changes.
#[derive(Default)]
pub(super) struct TimerGroups {
    groups: Mutex<BTreeMap<GroupKey, Group>>,
    /// The jobs whose runner has been started, to wake them for shutdown.
    runners: Mutex<Vec<Arc<Slot>>>,
}

impl TimerGroups {
    /// Put `slot` in the group its settings call for (none when it is neither scheduled nor
    /// paused), leaving the group it was in. The one place that re-groups timers; `now`
    /// gives a joining job its next fire time at once.
    pub(super) fn place(&self, slot: &Arc<Slot>, now: DateTime<Utc>) -> Placed {
        let held = RegistryHeld(lock(&self.groups));
        let regroup = slot.regroup(&held, now);
        let RegistryHeld(mut groups) = held;
        if let Some(old) = regroup.left
            && let Some(group) = groups.get(&old)
        {
            let mut members = lock(&group.members.0);
            members.retain(|s| !Arc::ptr_eq(s, slot));
            if members.is_empty() {
                drop(members);
                if let Some(group) = groups.remove(&old) {
                    group.stop.cancel();
                }
            }
        }
        let Some((key, schedule)) = regroup.joined else {
            return Placed::default();
        };
        let start_runner = slot.mark_runner_started();
        if start_runner {
            // Listed before it is started: a shutdown that lists the runners after this
            // wakes it, and one that listed them before has already stopped firing, which
            // the runner sees before it first waits.
            lock(&self.runners).push(slot.clone());
        }
        let timer = match groups.get(&key) {
            Some(group) => {
                lock(&group.members.0).push(slot.clone());
                None
            }
            None => {
                let members = Members(Arc::new(Mutex::new(vec![slot.clone()])));
                let stop = CancellationToken::new();
                groups.insert(
                    key,
                    Group {
                        members: members.clone(),
                        stop: stop.clone(),
                    },
                );
                Some(NewTimer {
                    schedule,
                    members,
                    stop,
                })
            }
        };
        Placed {
            timer,
            start_runner,
        }
    }

    /// Wake every runner so that it sees that firing has stopped and ends; called once
    /// firing is stopped.
    pub(super) fn stop_runners(&self) {
        lock(&self.runners).iter().for_each(|slot| slot.wake());
    }

    /// How many timer groups there are (one per distinct schedule in use).
    pub(super) fn len(&self) -> usize {
        lock(&self.groups).len()
    }
}
